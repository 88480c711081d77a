# The CSMS as a container (used by deploy/docker-compose.yml).
#   docker build -t csms . && docker run -p 9000:9000 -p 8080:8080 -e CSMS_HOST=0.0.0.0 -e CSMS_API_TOKEN=... csms
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/csms
COPY pyproject.toml README.md ./
COPY ocppj ./ocppj
COPY csms ./csms
COPY simulators ./simulators
RUN pip install '.[fast]' && useradd --system --home /var/lib/csms csms \
    && mkdir -p /var/lib/csms && chown csms:csms /var/lib/csms
USER csms
WORKDIR /var/lib/csms
EXPOSE 9000 8080
VOLUME ["/var/lib/csms"]
CMD ["csms", "serve"]
