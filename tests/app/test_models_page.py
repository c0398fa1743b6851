"""The Models page under AppTest: catalog, pre-flight, load / unload, downgrade, catalog editing."""

from streamlit.testing.v1 import AppTest

from engine.machine import MemoryReading
from engine.settings import ROOT
from engine.tracking import MODELS

TIMEOUT = 300


def page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages/2_Models.py"), default_timeout=TIMEOUT).run()


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_the_page_shows_memory_catalog_and_preflight(app_env):
    at = page()
    assert not at.exception, at.exception
    labels = {m.label for m in at.metric}
    assert {"Pressure", "Free", "This server's RSS", "Loaded models"} <= labels
    catalog = at.dataframe[1].value
    assert "smollm2-135m-instruct" in set(catalog["name"]) and catalog["bundled"].all()
    preflight = at.dataframe[0].value
    assert list(preflight["precision"]) == ["float32", "bfloat16", "float16", "int8", "nf4"]
    batches = list(preflight["largest batch in budget"])
    assert batches[0] >= 1 and batches[0] <= batches[1] <= batches[3] <= batches[4]  # smaller weights, more room
    weights = list(preflight["weights (GB)"])
    assert abs(weights[0] - 2 * weights[1]) < 0.01 and weights[1] == weights[2] > weights[3] > weights[4]


def test_load_then_unload_shows_rss_before_and_after(app_env):
    at = page()
    button(at, "Load and make active").click().run()
    assert not at.exception, at.exception
    assert any(s.value.startswith("Active: smollm2-135m-instruct") for s in at.success), [s.value for s in at.success]
    unload = [b for b in at.button if b.label == "Unload"]
    assert len(unload) == 1
    assert any("active" in m.value for m in at.markdown)
    # the CPU default (int4-weight) answers through the fast decoder (compiled in the app's background)
    assert any("fast decoder" in c.value for c in at.caption), [c.value for c in at.caption]
    unload[0].click().run()
    assert not at.exception, at.exception
    assert any(s.value.startswith("Unloaded smollm2-135m-instruct") and "RSS" in s.value for s in at.success)
    assert not [b for b in at.button if b.label == "Unload"]
    events = at.dataframe[-1].value
    # newest first; the balanced preset is the app's default model, so making it active is no swap
    assert list(events["event"]) == ["unload", "load"]


def test_low_memory_downgrades_the_load_and_logs_it(app_env, monkeypatch, tracker):
    monkeypatch.setattr("engine.models.preflight.read_memory", lambda device="cpu": MemoryReading(16, 1.4, 0.3))
    at = page()
    at.radio(key="models-aim").set_value("quality").run()
    button(at, "Load and make active").click().run()
    assert not at.exception, at.exception
    assert at.warning and at.warning[-1].value.startswith("Downgraded from smollm2-135m-instruct at float32")
    assert any("at bfloat16" in s.value for s in at.success)
    runs = tracker.recent(MODELS)
    assert runs and runs[0].params["precision"] == "bfloat16"


def test_a_bad_catalog_is_refused_with_a_message_and_a_good_one_is_saved(app_env):
    at = page()
    at.text_area(key="catalog-text").input("- {name: broken}")
    button(at, "Check and save").click().run()
    assert not at.exception, at.exception
    assert any("name and source are required" in e.value for e in at.error)
    assert not (app_env.data_dir / "catalog.yaml").exists()
    at.text_area(key="catalog-text").input("- {name: mine, source: /models/mine, params_m: 100}")
    button(at, "Check and save").click().run()
    assert any("Saved 1 entry" in s.value for s in at.success)
    assert "mine" in set(at.dataframe[1].value["name"])


def test_a_loaded_model_is_quantized_in_memory(app_env):
    at = page()
    at.radio(key="models-aim").set_value("quality").run()  # float32: full precision, quantizable
    button(at, "Load and make active").click().run()
    assert at.selectbox(key="quantize-model").value.endswith("(float32)")
    at.selectbox(key="quantize-to").set_value("int8-dynamic").run()
    button(at, "Quantize").click().run()
    assert not at.exception, at.exception
    notice = next(s.value for s in at.success if s.value.startswith("Quantized in memory"))
    assert "(int8-dynamic)" in notice and "GB of weights" in notice
    assert any("(int8-dynamic)" in m.value and "active" in m.value for m in at.markdown)
    assert list(at.dataframe[-1].value["event"])[:1] == ["quantize"]
    assert any("Load a model in full precision" in c.value for c in at.caption)  # nothing left to quantize


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_switch_then_a_remote_catalog_model_answers_through_it(app_env):
    """Serve on; the openai client gets an answer; a catalog entry ``openai:<this server>#<model>`` loads as the
    active model with its measured speed; Serve off frees the port."""
    import httpx
    from openai import OpenAI

    from engine.serve.server import ServeSpec, check_bind
    from ui import resources as r

    port = free_port()
    at = page()
    at.number_input(key="serve-port").set_value(port)
    at.toggle(key="serve-on").set_value(True).run()
    assert not at.exception, at.exception
    url = f"http://127.0.0.1:{port}/v1"
    try:
        assert any(url in s.value for s in at.success), [s.value for s in at.success]
        assert any(f"curl {url}/chat/completions" in c.value for c in at.code)  # how to call it, to copy
        client = OpenAI(base_url=url, api_key="none", max_retries=0)
        hi = [{"role": "user", "content": "What is the capital of France?"}]
        assert (
            "Paris"
            in client.chat.completions.create(model="default", messages=hi, max_tokens=16).choices[0].message.content
        )
        entry = f"- {{name: studio-api, source: 'openai:{url}#smollm2-135m-instruct'}}"
        at.text_area(key="catalog-text").input(entry)
        button(at, "Check and save").click().run()
        at.selectbox(key="models-entry").set_value("studio-api").run()
        assert any("A model behind a server" in c.value for c in at.caption), [c.value for c in at.caption]
        button(at, "Load and make active").click().run()
        assert not at.exception, at.exception
        active = [s.value for s in at.success if s.value.startswith("Active: studio-api, a model behind a server")]
        assert active and "tokens/s" in active[0], [s.value for s in at.success]
        catalog = next(d.value for d in at.dataframe if "measured speed" in d.value).set_index("name")
        assert "tokens/s" in catalog.loc["studio-api", "measured speed"]
        # the Query page answers with the active model: the one behind the server
        query = AppTest.from_file(str(ROOT / "pages/1_Query.py"), default_timeout=TIMEOUT).run()
        query.text_input(key="query-question").input("What is the Studio for?")
        query.button[0].click().run()
        assert not query.exception and not query.error, [e.value for e in query.error]
        assert query.success and query.success[0].value.strip()
        # answered by studio-api, which asked the server, which answered with the local model through the same manager
        assert r.manager().active_spec.name == "studio-api"
        assert {s.spec.name for s in r.manager().loaded()} == {"studio-api", "smollm2-135m-instruct"}
        # the switch survives a rerun (a reload draws the page again): still serving
        at.run()
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        at.toggle(key="serve-on").set_value(False).run()
    assert not at.exception, at.exception
    check_bind(ServeSpec(port=port))  # Stop freed the port: a server may listen there again


def test_export_refuses_a_folder_the_studio_did_not_make(app_env, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    at = page()
    at.text_input(key="model-export-target").input(str(mine)).run()
    at.checkbox(key="model-export-over").check()
    next(b for b in at.button if b.label == "Export").click().run()
    assert not at.exception, at.exception
    assert any("not an unchanged export of the Studio" in e.value for e in at.error), [e.value for e in at.error]
    assert (mine / "notes.txt").read_text() == "keep" and [p.name for p in mine.iterdir()] == ["notes.txt"]
