# taskagent's container image: a static Go binary on distroless, run as a
# non-root user. Build it from the repository root:
#
#   docker build -t taskagent:dev .
#
# internal/deploy's tests check this file: the final stage's USER is numeric and
# not root, and EXPOSE is the app's port.

# The build stage: Go 1.26 (go.mod's toolchain), no cgo (SQLite is pure Go).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY cmd ./cmd
COPY internal ./internal
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/taskagent ./cmd/taskagent

# The final stage: no shell, no package manager; CA certificates and tzdata only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/taskagent /taskagent
# The nonroot user of distroless, by number so that Kubernetes' runAsNonRoot
# can check it.
USER 65532:65532
ENV TASKAGENT_ADDR=:8080 \
    TASKAGENT_LOG_FORMAT=json \
    TASKAGENT_DATA_DIR=/tmp/taskagent
EXPOSE 8080
ENTRYPOINT ["/taskagent"]
CMD ["serve"]
