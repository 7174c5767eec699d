# Stands in for valkey/valkey:8-alpine where no image registry answers (tests/compose/images.py
# tags it with that name): Debian's Redis 7 server under Valkey's command names, serving the
# same protocol, with the official image's data directory and its entrypoint's default of
# protected mode off (the server is reached only over the compose network).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/redis-server /usr/local/bin/valkey-server \
 && ln -s /usr/bin/redis-cli /usr/local/bin/valkey-cli \
 && mkdir /data && chown redis:redis /data
COPY valkey-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
VOLUME /data
USER redis
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["valkey-server"]
