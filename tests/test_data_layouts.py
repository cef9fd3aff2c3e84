"""Readers for the real sets: every layout, the data config, pairing rules, counts, the column convention."""
from types import SimpleNamespace

import pytest
import yaml
from test_data_fixtures import make_root, suite_file, write_dataset

from harness.data import catalog, check, config, layouts, paper
from harness.data.errors import (
    ColumnDataError,
    DataConfigError,
    DataIntegrityError,
    DataMissingError,
    UnknownDatasetError,
)
from harness.data.sources import prepare
from harness.suite import load_suite

pytestmark = pytest.mark.filterwarnings("ignore::harness.data.errors.DataWarning")


@pytest.mark.parametrize("layout", list(layouts.LAYOUTS))
def test_every_layout_reads_every_dataset_it_names(tmp_path, layout):
    root = make_root(tmp_path / layout, layout, counts=None)
    sources = config.resolve(root)
    for dataset_id in layouts.LAYOUTS[layout].folders:
        found = check.scan(sources.locate(dataset_id), images="headers", counts_policy="warn")
        assert found.ok, (dataset_id, found.errors)
        expected = layouts.LAYOUTS[layout].folders[dataset_id]  # (airnet shares promptir's other folders)
        assert found.folders.roles == {role: [root / rel for rel in rels] for role, rels in expected.items()}
        n_folders = len(found.folders.roles.get("clean", found.folders.roles.get("input", [None])))
        assert all(found.count(g) == 2 * n_folders for g in found.groups), dataset_id
        for items in found.items.values():
            for item in items:
                assert item.input.is_file() and (item.target is None or item.target.is_file())


def test_pairing_rules():
    assert catalog.target_stems("haze_prefix", "0001_0.8_0.2") == ("0001",)  # SOTS / RESIDE
    assert catalog.target_stems("rain", "rain-12") == ("norain-12", "rain-12")  # Rain100L-train
    assert catalog.target_stems("rain", "12") == ("12",)  # Rain100L test: same name
    assert catalog.target_stems("same_name", "GOPR0384_11_00_000001") == ("GOPR0384_11_00_000001",)


def test_expected_counts_match_the_protocol_notes():
    expected = {"bsd68": 68, "rain100l": 100, "sots_outdoor": 500, "gopro": 1111, "lol_v1": 15}
    assert {k: catalog.get(k).expected_count for k in expected} == expected
    assert len(catalog.CDD11_TYPES) == 11
    assert all(catalog.get(k).count_verified for k in expected)


def test_sots_pairs_by_prefix_and_extension(tmp_path):
    root = tmp_path / "d"
    write_dataset(root, "promptir", "sots_outdoor", n=1)
    # the real set has .jpg inputs and .png targets
    (root / "test/dehaze/input/0001_0.8_0.2.png").rename(root / "test/dehaze/input/0001_0.8_0.2.jpg")
    found = check.scan(config.resolve(root).locate("sots_outdoor"), counts_policy="warn")
    assert found.ok and [(i.input.name, i.target.name) for i in found.items[""]] == [("0001_0.8_0.2.jpg", "0001.png")]


def test_layouts_are_detected_per_dataset_across_roots(tmp_path):
    write_dataset(tmp_path / "a", "adair", "gopro")
    write_dataset(tmp_path / "b", "moce", "lol_v1")
    write_dataset(tmp_path / "c", "onerestore", "cdd11", types=("haze",))
    cfg = tmp_path / "data.yaml"
    cfg.write_text(yaml.safe_dump({"roots": ["a", {"path": "b", "layout": "moce"}, "c"], "counts": "warn"}))
    sources = config.resolve(cfg)
    assert sources.locate("gopro").layout == "adair"
    assert sources.locate("lol_v1").layout == "moce"
    assert sources.locate("cdd11").layout == "onerestore"
    # absent everywhere: the folders to create are those of the first root's best layout
    missing = sources.locate("sots_outdoor")
    assert missing.missing() and missing.folders[0] == tmp_path / "a/test/dehaze/input"


def test_config_maps_ids_to_folders(tmp_path):
    write_dataset(tmp_path / "x", "moce", "sots_outdoor")
    write_dataset(tmp_path / "y", "promptir", "bsd68")
    (tmp_path / config.CONFIG_NAME).write_text(yaml.safe_dump({
        "roots": [],
        "datasets": {"sots_outdoor": {"input": "x/dehazing/SOTS/outdoor/hazy", "target": "x/dehazing/SOTS/outdoor/gt"},
                     "bsd68": {"clean": ["y/test/denoise/bsd68"]}},
        "counts": "warn",
    }))
    sources = config.resolve(tmp_path)  # a folder holding the config file
    assert sources.counts == "warn" and sources.config_path == tmp_path / config.CONFIG_NAME
    sots = sources.locate("sots_outdoor")
    assert sots.origin.startswith("config") and sots.roles["target"] == [tmp_path / "x/dehazing/SOTS/outdoor/gt"]
    ts = paper.test_set(tmp_path, "s", "bsd68", 15)
    assert len(ts.pairs) == 2
    with pytest.raises(DataMissingError, match="no folder is given for dataset 'rain100l'"):
        sources.locate("rain100l")


@pytest.mark.parametrize("doc, message", [
    ({"datasets": {"sots": {"input": "a", "target": "b"}}}, r"datasets: unknown dataset 'sots'.*sots_outdoor"),
    ({"datasets": {"bsd68": {"input": "a", "target": "b"}}}, r"datasets\.bsd68: a clean set takes clean \(got input, target\)"),
    ({"datasets": {"cdd11": {"clean": "a"}}}, r"datasets\.cdd11: a cdd11 set takes root"),
    ({"roots": [{"path": ".", "layout": "restormer"}]}, r"roots: unknown layout 'restormer'; known: promptir"),
    ({"counts": "lenient"}, r"counts: Input should be 'strict' or 'warn'"),
    ({"rootz": []}, r"rootz: Extra inputs are not permitted"),
])
def test_bad_config_names_the_file_and_key(tmp_path, doc, message):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(DataConfigError, match=message) as info:
        config.resolve(path)
    assert str(path) in str(info.value)


def test_malformed_config_yaml(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("roots: [a\n")
    with pytest.raises(DataConfigError, match=r"cfg\.yaml: line \d+: malformed YAML"):
        config.resolve(path)


def test_data_root_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv(config.DATA_ENV, raising=False)
    with pytest.raises(DataConfigError, match=r"--data-root DIR.*\$DACODE_BENCH_DATA"):
        config.resolve(None)
    with pytest.raises(DataConfigError, match="does not exist"):
        config.resolve(tmp_path / "nowhere")
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path))
    assert config.resolve(None).roots == [(tmp_path, None)]


def test_counts_are_enforced_for_test_sets(tmp_path):
    root = make_root(tmp_path / "d", "promptir", datasets=["rain100l"], counts=None)
    with pytest.raises(DataIntegrityError, match=r"2 pairs, expected 100.*counts: warn"):
        paper.test_set(root, "r", "rain100l")
    assert len(paper.test_set(root, "r", "rain100l", counts="warn").pairs) == 2


def test_cdd11_pairs_type_with_clear_and_only_needs_used_types(tmp_path):
    root = tmp_path / "cdd"
    write_dataset(root, "onerestore", "cdd11", n=2, types=("low_haze", "rain"))
    sources = config.resolve(root)
    found = check.scan(sources.locate("cdd11"), groups=("low_haze",), counts_policy="warn")
    assert found.ok, found.errors
    assert [(i.input.parent.name, i.target.parent.name, i.image_id) for i in found.items["low_haze"]] == [
        ("low_haze", "clear", "000001"), ("low_haze", "clear", "000002")]
    assert any("lacks" in w and "low_haze_snow" in w for w in found.warnings)
    ts = paper.test_set(root, "lh", "cdd11", parts="haze_low", crop_multiple=None)  # any order of parts
    assert ts.pairs[0].clean.shape == (40, 52, 3) and ts.notes["crop"] == "none" and ts.notes["parts"] == "low_haze"
    missing = check.start(sources.locate("cdd11"), ("snow",))
    assert missing.structural and any(e.startswith("missing") and e.endswith("test/snow") for e in missing.errors)


def _col(**kw):
    base = {"id": "c", "task": "composite", "dataset": "cdd11", "sigma": None, "parts": None}
    return SimpleNamespace(**{**base, **kw})


def test_column_convention():
    assert catalog.column_data(_col(parts="haze")).parts == "haze"
    assert catalog.column_data(_col(parts="rain_haze_low")).parts == "low_haze_rain"
    with pytest.raises(ColumnDataError, match=r"dataset 'cdd11' is a composite set, not dehaze.*parts: haze"):
        catalog.column_data(_col(task="dehaze"))
    with pytest.raises(ColumnDataError, match="'rain_snow' is not a CDD-11 type"):
        catalog.column_data(_col(parts="rain_snow"))
    with pytest.raises(ColumnDataError, match="'parts' applies to cdd11 columns only"):
        catalog.column_data(_col(task="dehaze", dataset="sots_outdoor", parts="haze"))
    with pytest.raises(ColumnDataError, match="is a training set"):
        catalog.column_data(_col(task="derain", dataset="rain100l_train"))
    with pytest.raises(UnknownDatasetError, match="unknown dataset 'sots'"):
        catalog.column_data(_col(task="dehaze", dataset="sots"))


@pytest.mark.parametrize("suite", ["table1_three_task", "table2_five_task", "table3_cdd11",
                                   "table4_nc_ablation", "table5_adaptation"])
def test_bundled_suites_fit_the_catalogue(suite):
    from harness.data.sources import validate_columns

    columns = validate_columns(load_suite(suite))
    assert columns and all(c.dataset_id in catalog.TEST_IDS for c in columns)


def test_five_task_suite_on_an_adair_root(tmp_path, monkeypatch):
    from harness import methods

    monkeypatch.setitem(methods.BUILTIN, "tiny", methods.MethodSpec("tiny", "test", lambda **kw: None))
    root = make_root(tmp_path / "adair", "adair")
    prepared = prepare(load_suite(str(suite_file(tmp_path, "table2_five_task"))), "paper", root, 0)
    assert [ts.dataset_id for ts in prepared.test_sets] == ["sots_outdoor", "rain100l", "bsd68", "gopro", "lol_v1"]
    assert {d["source"]: d["repeat"] for d in prepared.provenance["training"]} == {
        "reside_ots": 1, "rain100l_train": 120, "bsd400_wed/σ25": 3, "gopro_train": 5, "lol_v1_train": 20}
    assert "subset" in prepared.label
    # LOL's 40×52 → 32×48 like every PromptIR-family crop
    assert prepared.test_sets[4].pairs[0].clean.shape == (32, 48, 3)
