# supervise: one image for every process of the stack (docker-compose.yml): migrate, web, worker, cron.
#   docker build -t supervise .
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# tzdata: `supervise cron` reads its cron strings in Asia/Shanghai (TZ + tzset needs the zone file).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tzdata \
 && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged uid/gid: volumes keep the same owner across image rebuilds.
RUN groupadd --system --gid 10001 supervise \
 && useradd --system --uid 10001 --gid supervise --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin supervise

WORKDIR /app

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when they change, not
# on every code change. Every dependency ships manylinux wheels, so no compiler is needed.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies'].get('s3', [])))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The code. Installed in place (editable): the app finds templates/ and static/ next to the package.
COPY . .
RUN pip install --no-deps -e . \
 && python -m compileall -q supervise workers \
 && mkdir -p /data/uploads \
 && chown -R supervise:supervise /data

USER supervise
# glibc hands buffers above 128 KB back to the system when freed: a web worker that decoded six
# 12 MP photos drops back to ~150 MB instead of keeping ~400 MB (bench/memory.py, issue 15).
ENV SUPERVISE_ENV=production \
    SUPERVISE_DATA_DIR=/data \
    MALLOC_MMAP_THRESHOLD_=131072
EXPOSE 8000

# The web process; compose gives migrate, worker and cron their own commands.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "supervise.wsgi:app"]
