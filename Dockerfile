# The CSMS as a container (used by deploy/docker-compose.yml, deploy/compose/ and deploy/k8s/).
#   docker build -t csms . && docker run -p 9000:9000 -p 8080:8080 -e CSMS_HOST=0.0.0.0 -e CSMS_API_TOKEN=... csms
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/csms
COPY pyproject.toml README.md ./
COPY ocppj ./ocppj
COPY csms ./csms
COPY simulators ./simulators
RUN pip install '.[fast]' && useradd --system --home /var/lib/csms csms \
    && mkdir -p /var/lib/csms/files && chown -R csms:csms /var/lib/csms
USER csms
WORKDIR /var/lib/csms
# OCPP, the API; 9100: `csms gateway --metrics-port 9100`
EXPOSE 9000 8080 9100
VOLUME ["/var/lib/csms"]
CMD ["csms", "serve"]
