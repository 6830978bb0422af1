"""codeship-services.yml (or docker-compose.yml) → ``spec.services``, split by job:

* :mod:`.definitions`: the file's services, their names, and every service converted;
* :mod:`.service`: one service's keys;
* :mod:`.build`: its ``build`` (Codeship's spellings) and encrypted build args;
* :mod:`.files`: the checkout the converter reads env and encrypted files from;
* :mod:`.options`: what the command line decides for them.
"""

from shipway.codeship.services.definitions import (
    ConvertedServices,
    convert_services,
    service_definitions,
)
from shipway.codeship.services.files import NoFiles, ProjectFiles
from shipway.codeship.services.options import ServiceOptions

__all__ = [
    "ConvertedServices",
    "NoFiles",
    "ProjectFiles",
    "ServiceOptions",
    "convert_services",
    "service_definitions",
]
