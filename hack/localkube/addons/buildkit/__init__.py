"""BuildKit: the builder's deployment, its images, the build pods' client, its manifest, host builds."""
