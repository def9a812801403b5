# syntax=docker/dockerfile:1
# Jupyter with the analyst's notebooks (deploy/notebooks), reading PostgreSQL and MongoDB.
# Debian's own Python packages instead of pip: prebuilt for amd64, arm64 and armhf alike, so
# the image builds on every platform without compiling pandas or matplotlib.
# Build from the repository root:
#   docker build -f deploy/docker/jupyter.Dockerfile -t datalab-jupyter .
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3-notebook python3-ipykernel jupyter-nbconvert \
      python3-pandas python3-sqlalchemy python3-psycopg2 python3-matplotlib python3-pymongo \
      tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 --shell /usr/sbin/nologin datalab \
 && install -d -o datalab -g datalab /home/datalab/work
# Readable by anyone, owned by the user: the notebooks can be run and edited in the container.
COPY --chown=datalab:datalab deploy/notebooks/ /home/datalab/notebooks/
RUN chmod -R u+rwX,go+rX /home/datalab/notebooks
USER datalab
WORKDIR /home/datalab/notebooks
ENV MPLBACKEND=Agg \
    DATALAB_PG_URL=postgres://datalab@postgres:5432/datalab
EXPOSE 8888
# The token comes from JUPYTER_TOKEN (set it: the compose file does).
ENTRYPOINT ["tini", "--"]
CMD ["jupyter", "notebook", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--notebook-dir=/home/datalab/notebooks"]
