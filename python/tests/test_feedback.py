"""sandwich.feedback: a campaign from Python, answered over HTTP, read back as polars frames."""

import json
import urllib.request

import polars as pl
import pytest

import sandwich


def _items() -> pl.DataFrame:
    return pl.DataFrame({"id": ["a", "b", "c"], "text": ["good", "bad", "fine"], "gold": [None, None, "pos"]})


def test_a_campaign_is_served_answered_over_http_and_read_back(tmp_path):
    c = sandwich.feedback.campaign(tmp_path / "c.db", items=_items(), kind="label", choices=["neg", "pos"],
                                   raters=[{"id": "ann"}], overlap=1, gold={"rate": 0.5})
    url = c.serve(port=0)
    assert url.startswith("http://127.0.0.1:") and c.url() == url
    link = pl.DataFrame(c.links())["url"][0]
    token = link.rsplit("/", 1)[1]

    def api(method, path, body=None):
        req = urllib.request.Request(url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.load(r)

    item = api("GET", "/api/next")["item"]["item"]
    assert api("POST", "/api/judgments", {"item": item, "answer": "pos", "key": "k1"})["status"] == "saved"
    j = pl.DataFrame(c.judgments())
    assert j.select("task", "worker", "label").row(0) == (item, "ann", "pos")
    assert c.stop() is True and c.url() is None
    c.export(tmp_path / "j.parquet")
    assert pl.read_parquet(tmp_path / "j.parquet").height == 1
    # Opening the file again continues the campaign.
    again = sandwich.feedback.campaign(tmp_path / "c.db")
    assert pl.DataFrame(again.quality())["judgments"].to_list() == [1]


def test_a_bad_spec_is_a_config_error_naming_the_key(tmp_path):
    with pytest.raises(sandwich.ConfigError, match="choices"):
        sandwich.feedback.campaign(tmp_path / "c.db", items=_items(), kind="label", choices=["neg"],
                                   raters=[{"id": "ann"}])
    with pytest.raises(sandwich.ConfigError, match="items"):
        sandwich.feedback.campaign(tmp_path / "d.db", kind="label", choices=["neg", "pos"], raters=[{"id": "ann"}])
