# Stands in for postgres:16-alpine where no image registry answers (tests/compose/images.py
# tags it with that name): Debian's PostgreSQL 15 with the part of the official image's
# entrypoint that Herd's compose file relies on (postgres-entrypoint.sh): POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB make the cluster on the first start, the data lies in
# /var/lib/postgresql/data, and pg_isready answers the healthcheck.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# No cluster at install time: the entrypoint makes it in the volume.
RUN mkdir -p /etc/postgresql-common \
 && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      -o Dpkg::Options::=--force-confold postgresql-15 \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
EXPOSE 5432
# Fast shutdown, as the official image's.
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
