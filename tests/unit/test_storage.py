"""The upload stores keep one contract, on a folder and on a real S3-compatible server.

The S3 driver talks HTTP to moto's S3 server on 127.0.0.1 (the same wire protocol MinIO or a
cloud's object storage speak); nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from supervise.intake.storage import FilesystemStore, S3Store, store_from_config

BUCKET = "supervise-test"


@pytest.fixture(scope="module")
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_config(s3_server, tmp_path):
    config = {
        "UPLOAD_STORAGE": "s3",
        "S3_ENDPOINT_URL": s3_server,
        "S3_BUCKET": BUCKET,
        "S3_ACCESS_KEY_ID": "test-key",
        "S3_SECRET_ACCESS_KEY": "test-secret",
        "S3_REGION": "us-east-1",
        "S3_PREFIX": "uploads/",
        "DATA_DIR": str(tmp_path),
    }
    store = S3Store.from_config(config)
    store.client.create_bucket(Bucket=BUCKET)
    yield config
    listed = store.client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    for obj in listed:
        store.client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    store.client.delete_bucket(Bucket=BUCKET)


@pytest.fixture(params=["fs", "s3"])
def store(request, tmp_path):
    if request.param == "fs":
        return FilesystemStore(tmp_path / "uploads")
    return store_from_config(request.getfixturevalue("s3_config"))


def test_the_store_contract(store):
    data = b"\x89PNG fake but bytes are bytes"
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.put(data) == digest  # the same photo twice is stored once
    assert store.exists(digest) and store.get(digest) == data
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(missing)
    with pytest.raises(KeyError):
        store.get(missing)
    for hostile in ("../../etc/passwd", "ab", digest.upper(), digest + "/x"):
        with pytest.raises(KeyError):
            store.get(hostile)


def test_s3_objects_live_under_the_prefix_by_hash(s3_config):
    store = store_from_config(s3_config)
    digest = store.put(b"photo")
    keys = [o["Key"] for o in store.client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"uploads/{digest[:2]}/{digest[2:4]}/{digest}"]


def test_a_citizen_photo_goes_to_the_bucket_and_is_served_from_it(app, client, demo, s3_config):
    """End to end with UPLOAD_STORAGE=s3: submit with a photo, thumbnail job, signed link."""
    from rq import SimpleWorker
    from sqlalchemy import select

    from supervise.cases.models import Attachment
    from supervise.extensions import db
    from supervise.queueing import redis_connection
    from tests.conftest import VALID_SUBMISSION

    app.config.update(s3_config)
    image = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(image, "JPEG")
    response = client.post(
        "/api/v1/cases",
        data={**VALID_SUBMISSION, "photos": (io.BytesIO(image.getvalue()), "p.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    SimpleWorker(["default"], connection=redis_connection(app)).work(burst=True)  # thumbnails
    db.session.expire_all()
    attachment = db.session.scalar(select(Attachment))
    store = store_from_config(s3_config)
    assert (
        store.exists(attachment.sha256) and attachment.thumb_sha256 and store.exists(attachment.thumb_sha256)
    )
    assert not (Path(s3_config["DATA_DIR"]) / "uploads").exists()  # nothing written locally

    from supervise.intake.files import signed_url

    with app.test_request_context():
        url = signed_url(attachment)
    served = client.get(url)
    assert served.status_code == 200 and served.data == store.get(attachment.sha256)


def test_s3_needs_a_bucket():
    from supervise.config import ConfigError, validate_config

    with pytest.raises(ConfigError, match="S3_BUCKET"):
        validate_config({"UPLOAD_STORAGE": "s3", "SUPERVISE_ENV": "development"})
    with pytest.raises(ConfigError, match="fs or s3"):
        validate_config({"UPLOAD_STORAGE": "ftp", "SUPERVISE_ENV": "development"})
