"""Per-namespace rights on the cluster's registry: distribution's token authentication.

distribution checks a JWT on every request; this package decides what goes into one. Each
namespace has its own credential (an HMAC of its name under a key only the operator and the
token service hold, so nothing per namespace is stored), which may pull and push the
namespace's own repositories (``<prefix><namespace>/…``) and pull the mirrored base images
(``library/*``, ``docker/*``), nothing else: no other namespace's image, no catalog, no write
to the mirror. An admin credential, kept out of every tenant namespace, may do everything
(the mirror's seeding, retention). Anyone may pull the mirror without a credential, as from
Docker Hub.

* :mod:`.credentials`: mint and check the credentials;
* :mod:`.policy`: which of the requested actions a credential gets;
* :mod:`.tokens`: the signed token (ES256) and the key set distribution trusts;
* :mod:`.service`: the token endpoint's answer to one request (pure);
* :mod:`.server`: that endpoint over HTTP(S), ``shipway registry-token serve``.
"""
