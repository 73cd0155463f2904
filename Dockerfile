# syntax=docker/dockerfile:1
# Build a static binary (the SQLite driver is pure Go, so CGO stays off).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/cutoverbot ./cmd/cutoverbot \
 && mkdir -p /out/data

# Small final image: CA certificates and time zones come with distroless/static; runs as non-root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cutoverbot /usr/local/bin/cutoverbot
COPY --from=build --chown=nonroot:nonroot /out/data /data
WORKDIR /data
# The SQLite file lives on a volume so state survives redeploys; use CUTOVER_DB=postgres://… for replicas.
ENV CUTOVER_DB=/data/cutoverbot.db CUTOVER_HTTP_ADDR=:8080
VOLUME ["/data"]
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/cutoverbot"]
CMD ["run"]
