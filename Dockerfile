# syntax=docker/dockerfile:1
# Floorgate on Node 22 LTS. Multi-stage: the build stage compiles TypeScript and the native
# serialport binding; the runtime stage carries only production dependencies and dist/.
FROM node:22-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
# Only what the shipped code is compiled from: `npm ci` runs `prepare`, which compiles src/ and
# drivers/ (tsconfig.ship.json). bench/ is not built here: it imports test/helpers/.
# test/faults/docker-image.test.ts rebuilds both stages from exactly these COPY lines.
COPY package.json package-lock.json tsconfig.json tsconfig.ship.json ./
COPY src ./src
COPY drivers ./drivers
RUN npm ci && npm prune --omit=dev

FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/package.json ./package.json
COPY bin ./bin
COPY edge-config ./edge-config
COPY docs ./docs
COPY src/http/public ./src/http/public
RUN mkdir -p /data /config && chown -R node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080 1884
# The config's gateway.dataDir should point at /data and http.listen at 0.0.0.0:8080
# (with operatorTokens, which the validator requires for a non-loopback listener).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "--max-semi-space-size=16", "--no-allocation-site-pretenuring", "/app/bin/floorgate"]
CMD ["run", "--config", "/config/floorgate.yaml"]
