"""Kernels listed, uploaded and reloaded through the client, on servers of the tests' own
that serve a copy of the manifests (never the repository's folder)."""

from __future__ import annotations

import shutil

import pytest

from conftest import TOKEN
from helix_router import AdminDisabled, InvalidKernel, Unauthorized

BASKET = {
    "spots": [100, 90],
    "weights": [0.5, 0.5],
    "vols": [0.2, 0.3],
    "correlation": [[1, 0.4], [0.4, 1]],
    "maturity": 1,
    "strike": 95,
    "paths": 20_000,
}


def renamed_basket(manifests, name: str) -> tuple[str, bytes]:
    """The bundled basket-option Wasm kernel's manifest, renamed `name`, and its module."""
    text = (manifests / "wasm/basket-option.toml").read_text()
    assert 'name = "basket-option"' in text and 'path = "basket-option.wasm"' in text
    text = text.replace('name = "basket-option"', f'name = "{name}"').replace(
        'path = "basket-option.wasm"', f'path = "{name}.wasm"'
    )
    return text, (manifests / "wasm/basket-option.wasm").read_bytes()


def test_kernels_lists_every_build_and_kernel_names_its_own(helix):
    builds = helix.kernels()
    pairs = {(b.name, b.runtime) for b in builds}
    assert {("mc-option", "native"), ("mc-option", "wasm"), ("basket-option", "wasm"), ("hashmix", "native")} <= pairs
    option = helix.kernel("mc-option")
    assert option.name == "mc-option" and {b.runtime for b in option.builds} == {"native", "wasm"}
    wasm = option.build("wasm")
    assert wasm.module_sha256 is not None and len(wasm.module_sha256) == 64
    assert option.build("native").module_sha256 is None
    assert wasm.manifest["name"] == "mc-option" and wasm.version == "1.0.0"
    with pytest.raises(KeyError, match="no gpu build"):
        option.build("gpu")


def test_an_uploaded_kernel_serves_the_bits_of_the_module_it_was_built_from(own_server):
    s = own_server("watch_interval_ms = 0\n")
    manifest, module = renamed_basket(s.manifests, "my-basket")
    with s.client(admin_token=TOKEN) as admin:
        done = admin.upload("my-basket", manifest, module)
        assert (done.kernel.name, done.kernel.runtime, done.replaced) == ("my-basket", "wasm", False)
        assert done.report.loaded == ["my-basket@1.0.0 (wasm)"] and done.report.refused == []
        assert done.kernel.module_sha256 == admin.kernel("basket-option").build("wasm").module_sha256
        mine = admin.submit("my-basket", BASKET, budget_ms=5000, seed=1)
        bundled = admin.submit("basket-option", BASKET, budget_ms=5000, seed=1)
        assert mine.estimates == bundled.estimates and mine.kernel == "my-basket"
        # A second upload of the same kernel replaces it in place.
        assert admin.upload("my-basket", manifest, module).replaced is True
        # It landed in the server's own copy, not in the repository.
        assert (s.manifests / "my-basket/my-basket.toml").exists()


def test_a_refused_upload_says_why_and_serves_nothing(own_server):
    s = own_server("watch_interval_ms = 0\n")
    manifest, module = renamed_basket(s.manifests, "broken-basket")
    with s.client(admin_token=TOKEN) as admin:
        with pytest.raises(InvalidKernel) as refused:
            admin.upload("broken-basket", manifest, module[: len(module) // 2])
        assert refused.value.status == 422 and "sha256" in refused.value.message, refused.value
        assert "broken-basket" not in {b.name for b in admin.kernels()}


def test_reload_picks_up_added_and_removed_manifests(own_server):
    # No folder watch: only the reload can see the change.
    s = own_server("watch_interval_ms = 0\n")
    manifest, module = renamed_basket(s.manifests, "folder-basket")
    with s.client(admin_token=TOKEN) as admin:
        assert admin.reload().loaded == []
        (s.manifests / "wasm/folder-basket.wasm").write_bytes(module)
        (s.manifests / "wasm/folder-basket.toml").write_text(manifest)
        added = admin.reload()
        assert (added.loaded, added.removed, added.refused) == (["folder-basket@1.0.0 (wasm)"], [], [])
        assert admin.kernel("folder-basket").build("wasm").version == "1.0.0"
        (s.manifests / "wasm/folder-basket.toml").unlink()
        assert admin.reload().removed == ["folder-basket (wasm)"]
        shutil.copy(s.manifests / "wasm/folder-basket.wasm", s.manifests / "wasm/also.wasm")
        (s.manifests / "wasm/also.toml").write_text("name = ")
        bad = admin.reload()
        assert bad.loaded == [] and len(bad.refused) == 1 and "also.toml" in bad.refused[0].source, bad


def test_admin_calls_need_the_token(server):
    manifest, module = renamed_basket(server.manifests, "sneaky-basket")
    with server.client() as anonymous, server.client(admin_token="wrong") as wrong:
        with pytest.raises(Unauthorized) as none:
            anonymous.upload("sneaky-basket", manifest, module)
        assert none.value.status == 401 and "pass admin_token=" in none.value.message
        with pytest.raises(Unauthorized) as bad:
            wrong.reload()
        assert bad.value.status == 401 and "pass admin_token=" not in bad.value.message
        assert "sneaky-basket" not in {b.name for b in anonymous.kernels()}


def test_a_server_without_a_token_has_its_admin_api_off(own_server):
    s = own_server(token=None)
    with s.client(admin_token="anything") as c:
        with pytest.raises(AdminDisabled) as off:
            c.reload()
    assert off.value.status == 403 and isinstance(off.value, Unauthorized)
