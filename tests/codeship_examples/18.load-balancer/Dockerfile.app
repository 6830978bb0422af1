FROM golang:1.22 AS build
WORKDIR /src
COPY hello.go .
RUN CGO_ENABLED=0 go build -o /hello-web hello.go

FROM debian:12-slim
COPY --from=build /hello-web /usr/local/bin/hello-web
