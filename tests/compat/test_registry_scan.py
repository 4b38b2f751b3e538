"""ECR basic scanning with real registry traffic: FROM-scratch style images pushed over
/v2/ whose layers hold a dpkg status file and a Cargo.lock, the synthetic OSV fixture set
(fixtures/osv/) imported with `stevedore scan-db import`, scan on push and
StartImageScan, findings, severity counts, statuses and AWS's errors through boto3."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

import botocore.exceptions
import pytest

from conftest import stevedore_binary
from registry_fixtures import V2, aws_env, ecr, registry_password, repo, repo_name, v2  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures" / "osv"


def layer(files: dict[str, bytes | None]) -> bytes:
    """An uncompressed tar layer; a `None` body is a whiteout marker (empty file)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for path, body in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(body or b"")
            info.mode = 0o644
            t.addfile(info, io.BytesIO(body or b""))
    return out.getvalue()


def dpkg_status(ssl: str, zlib: str) -> bytes:
    return (
        "Package: libfixture3\nStatus: install ok installed\nSource: fixturessl\n"
        f"Version: {ssl}\nArchitecture: amd64\nDescription: synthetic\n multi-line\n\n"
        "Package: fixturezlib\nStatus: install ok installed\n"
        f"Version: {zlib}\n\n"
        "Package: fixture-removed\nStatus: deinstall ok config-files\nVersion: 0.1\n"
    ).encode()


def cargo_lock(smallvec: str, time_: str) -> bytes:
    return (
        'version = 3\n\n[[package]]\nname = "app"\nversion = "0.1.0"\n\n'
        f'[[package]]\nname = "fixture-smallvec"\nversion = "{smallvec}"\n'
        'source = "registry+https://example.invalid/index"\n\n'
        f'[[package]]\nname = "fixture-time"\nversion = "{time_}"\n'
        'source = "registry+https://example.invalid/index"\n'
    ).encode()


def image_layers(vulnerable: bool) -> list[bytes]:
    base = layer({
        "var/lib/dpkg/status": dpkg_status(
            "3.0.11-1~deb12u1" if vulnerable else "3.0.11-1~deb12u2",
            "1:1.2.13.dfsg-1" if vulnerable else "1:1.2.13.dfsg-2",
        ),
        # A lockfile the next layer deletes: its (vulnerable) crate must not be reported.
        "srv/old/Cargo.lock": cargo_lock("1.0.0", "0.1.40"),
        "usr/bin/tool": b"\x7fELF not really",
        # Debian 12: records for other Debian releases must not apply.
        "usr/lib/os-release": b'ID=debian\nVERSION_ID="12"\n',
    })
    top = layer({
        "srv/.wh.old": None,
        "srv/app/Cargo.lock": cargo_lock(
            "1.6.0" if vulnerable else "1.6.1",
            "0.1.40" if vulnerable else "0.1.41",
        ),
    })
    return [base, top]


def run_import(cfg, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(stevedore_binary()), "scan-db", "import", str(path), "--endpoint", cfg.endpoint],
        env=aws_env(cfg), capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def osv_db(server):
    p = run_import(server, FIXTURES)
    assert p.returncode == 0, p.stderr
    return p


def wait_scan(ecr, name: str, digest: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = ecr.describe_image_scan_findings(repositoryName=name, imageId={"imageDigest": digest})
            if r["imageScanStatus"]["status"] != "IN_PROGRESS":
                return r
        except botocore.exceptions.ClientError as e:
            # Scan on push is queued just after the push answers.
            if e.response["Error"]["Code"] != "ScanNotFoundException":
                raise
        assert time.monotonic() < deadline, "the scan did not finish in time"
        time.sleep(0.2)


@pytest.fixture
def scanned_repo(ecr):
    name = repo_name("scan")
    ecr.create_repository(repositoryName=name, imageScanningConfiguration={"scanOnPush": True})
    yield name
    ecr.delete_repository(repositoryName=name, force=True)


def test_import_reports_malformed_files_and_reimport_replaces_by_id(server, osv_db):
    assert "malformed.json" in osv_db.stderr
    first = json.loads(osv_db.stdout)
    assert first["imported"] == 6 and first["skipped"] == 1
    again = run_import(server, FIXTURES)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["imported"] == 6
    assert second["total"] == first["total"], "same ids replace, never duplicate"
    assert second["updatedAt"] >= first["updatedAt"]


def test_import_needs_a_folder_or_zip(server, tmp_path):
    bogus = tmp_path / "not-a-zip.bin"
    bogus.write_bytes(b"plain bytes")
    p = run_import(server, bogus)
    assert p.returncode != 0
    assert "zip" in p.stderr


def test_scan_on_push_finds_the_fixture_vulnerabilities(ecr, v2, scanned_repo, osv_db):
    digest, _ = v2.push_image(scanned_repo, "vulnerable", image_layers(vulnerable=True))
    r = wait_scan(ecr, scanned_repo, digest)
    assert r["imageScanStatus"] == {"status": "COMPLETE", "description": "The scan was completed successfully."}
    f = r["imageScanFindings"]
    got = sorted(
        (x["name"], x["severity"], {a["key"]: a["value"] for a in x["attributes"]}["package_name"],
         {a["key"]: a["value"] for a in x["attributes"]}["package_version"])
        for x in f["findings"])
    assert got == [
        ("STEVEDORE-TEST-0001", "HIGH", "libfixture3", "3.0.11-1~deb12u1"),
        ("STEVEDORE-TEST-0002", "LOW", "fixturezlib", "1:1.2.13.dfsg-1"),
        ("STEVEDORE-TEST-0003", "CRITICAL", "fixture-smallvec", "1.6.0"),
        ("STEVEDORE-TEST-0004", "UNDEFINED", "fixture-time", "0.1.40"),
    ]
    assert f["findingSeverityCounts"] == {"CRITICAL": 1, "HIGH": 1, "LOW": 1, "UNDEFINED": 1}
    first = next(x for x in f["findings"] if x["name"] == "STEVEDORE-TEST-0001")
    assert first["uri"] == "https://example.invalid/STEVEDORE-TEST-0001"
    assert first["description"].startswith("Synthetic")
    assert f["imageScanCompletedAt"] and f["vulnerabilitySourceUpdatedAt"]

    # Paging: two findings a page, most severe first.
    page = ecr.describe_image_scan_findings(repositoryName=scanned_repo, imageId={"imageTag": "vulnerable"}, maxResults=2)
    assert [x["severity"] for x in page["imageScanFindings"]["findings"]] == ["CRITICAL", "HIGH"]
    rest = ecr.describe_image_scan_findings(repositoryName=scanned_repo, imageId={"imageTag": "vulnerable"},
                                            maxResults=2, nextToken=page["nextToken"])
    assert [x["severity"] for x in rest["imageScanFindings"]["findings"]] == ["LOW", "UNDEFINED"]
    assert "nextToken" not in rest

    detail = ecr.describe_images(repositoryName=scanned_repo, imageIds=[{"imageDigest": digest}])["imageDetails"][0]
    assert detail["imageScanStatus"]["status"] == "COMPLETE"
    assert detail["imageScanFindingsSummary"]["findingSeverityCounts"] == {"CRITICAL": 1, "HIGH": 1, "LOW": 1, "UNDEFINED": 1}


def test_fixed_versions_yield_no_findings(ecr, v2, scanned_repo, osv_db):
    digest, _ = v2.push_image(scanned_repo, "fixed", image_layers(vulnerable=False))
    r = wait_scan(ecr, scanned_repo, digest)
    assert r["imageScanStatus"]["status"] == "COMPLETE"
    assert r["imageScanFindings"]["findings"] == []
    assert "findingSeverityCounts" not in r["imageScanFindings"]


def test_manual_scan_scan_not_found_and_the_daily_quota(ecr, v2, repo, osv_db):
    digest, _ = v2.push_image(repo, "v1", image_layers(vulnerable=True))
    time.sleep(0.5)  # scan on push is off here: nothing may start
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "v1"})
    assert e.value.response["Error"]["Code"] == "ScanNotFoundException"
    assert "imageScanStatus" not in ecr.describe_images(repositoryName=repo)["imageDetails"][0]

    started = ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "v1"})
    assert started["imageScanStatus"]["status"] == "IN_PROGRESS"
    assert started["imageId"] == {"imageDigest": digest, "imageTag": "v1"}
    ecr.get_waiter("image_scan_complete").wait(
        repositoryName=repo, imageId={"imageDigest": digest}, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    done = ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageDigest": digest})
    assert done["imageScanFindings"]["findingSeverityCounts"]["CRITICAL"] == 1

    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecr.start_image_scan(repositoryName=repo, imageId={"imageDigest": digest})
    assert e.value.response["Error"]["Code"] == "LimitExceededException"
    # Deleting the image deletes its scan: pushed again, it has none and may be scanned.
    ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": digest}])
    again, _ = v2.push_image(repo, "v1", image_layers(vulnerable=True))
    assert again == digest
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageDigest": digest})
    assert e.value.response["Error"]["Code"] == "ScanNotFoundException"
    assert ecr.start_image_scan(repositoryName=repo, imageId={"imageDigest": digest})["imageScanStatus"]["status"] == "IN_PROGRESS"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "nope"})
    assert e.value.response["Error"]["Code"] == "ImageNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecr.start_image_scan(repositoryName=repo_name("missing"), imageId={"imageTag": "v1"})
    assert e.value.response["Error"]["Code"] == "RepositoryNotFoundException"


def test_bad_layers_fail_and_scratch_images_are_unsupported(ecr, v2, scanned_repo, osv_db):
    digest, _ = v2.push_image(scanned_repo, "garbage", [b"this is not a tar archive " * 64])
    r = wait_scan(ecr, scanned_repo, digest)
    assert r["imageScanStatus"]["status"] == "FAILED"
    assert "tar" in r["imageScanStatus"]["description"]

    # A layer path that climbs out of the root fails the scan instead of being followed.
    climbing = io.BytesIO()
    with tarfile.open(fileobj=climbing, mode="w") as t:
        info = tarfile.TarInfo("../../etc/Cargo.lock")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    digest, _ = v2.push_image(scanned_repo, "climbing", [climbing.getvalue()])
    assert wait_scan(ecr, scanned_repo, digest)["imageScanStatus"]["status"] == "FAILED"

    digest, _ = v2.push_image(scanned_repo, "scratch", [layer({"bin/app": b"\x7fELF"})])
    r = wait_scan(ecr, scanned_repo, digest)
    assert r["imageScanStatus"] == {
        "status": "UNSUPPORTED_IMAGE",
        "description": "UnsupportedImageError: The operating system and/or package manager are not supported.",
    }


def test_registry_rules_decide_scan_on_push(ecr, v2, osv_db):
    ruled, other = repo_name("ruled"), repo_name("plain")
    for n in (ruled, other):
        ecr.create_repository(repositoryName=n)
    try:
        put = ecr.put_registry_scanning_configuration(
            scanType="BASIC",
            rules=[{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "ruled-*", "filterType": "WILDCARD"}]}])
        assert put["registryScanningConfiguration"]["rules"][0]["scanFrequency"] == "SCAN_ON_PUSH"
        got = ecr.get_registry_scanning_configuration()
        assert got["scanningConfiguration"]["scanType"] == "BASIC"
        assert got["scanningConfiguration"]["rules"] == put["registryScanningConfiguration"]["rules"]

        batch = ecr.batch_get_repository_scanning_configuration(repositoryNames=[ruled, other, "no-such-repo"])
        by_name = {c["repositoryName"]: c for c in batch["scanningConfigurations"]}
        assert by_name[ruled]["scanFrequency"] == "SCAN_ON_PUSH" and by_name[ruled]["scanOnPush"] is True
        assert by_name[ruled]["appliedScanFilters"] == [{"filter": "ruled-*", "filterType": "WILDCARD"}]
        assert by_name[other]["scanFrequency"] == "MANUAL"
        assert batch["failures"][0]["repositoryName"] == "no-such-repo"
        assert batch["failures"][0]["failureCode"] == "REPOSITORY_NOT_FOUND"

        digest, _ = v2.push_image(ruled, "v1", image_layers(vulnerable=True))
        assert wait_scan(ecr, ruled, digest)["imageScanStatus"]["status"] == "COMPLETE"
        digest, _ = v2.push_image(other, "v1", image_layers(vulnerable=True))
        time.sleep(0.5)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecr.describe_image_scan_findings(repositoryName=other, imageId={"imageDigest": digest})
        assert e.value.response["Error"]["Code"] == "ScanNotFoundException"

        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecr.put_registry_scanning_configuration(
                scanType="BASIC",
                rules=[{"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}])
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    finally:
        # The server is shared: with no rules, repositories' own scanOnPush decides again.
        ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[])
        for n in (ruled, other):
            ecr.delete_repository(repositoryName=n, force=True)
