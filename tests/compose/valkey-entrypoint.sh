#!/bin/sh
# As the official image's entrypoint: a server started without a configuration file listens
# with protected mode off, since only the containers on its network reach it.
set -eu
if [ "${1:-}" = valkey-server ]; then
    case " $* " in
        *" --protected-mode "*) ;;
        *) set -- "$@" --protected-mode no ;;
    esac
fi
exec "$@"
