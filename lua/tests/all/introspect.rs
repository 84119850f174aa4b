//! What a notebook asks while the user types: completions, doc pages, whether a cell is complete,
//! and the display hook the kernel installs.

use std::sync::{Arc, Mutex};

use sandwich_lua::{Completeness, DisplayEvent};

use crate::util::Captured;

#[test]
fn completion_covers_globals_fields_methods_and_keywords() {
    let c = Captured::new();
    c.eval("df = sw.frame{a = {1}}; my_table = {alpha = 1, beta = 2}");
    let s = &c.session;
    let done = s.complete("sw.read_c", 9);
    assert_eq!(done.matches, ["read_csv"]);
    assert_eq!((done.cursor_start, done.cursor_end), (3, 9));
    assert_eq!(s.complete("my_table.al", 11).matches, ["alpha"]);
    assert_eq!(s.complete("df:he", 5).matches, ["head", "height"]);
    assert_eq!(s.complete("local x = whi", 13).matches, ["while"]);
    assert!(s
        .complete("my_t", 4)
        .matches
        .contains(&"my_table".to_string()));
    // Positions count characters, not bytes.
    let done = s.complete("é = sw.agg", 10);
    assert_eq!(done.matches, ["aggregate"]);
    assert_eq!(done.cursor_start, 7);
    // Completion never runs code: a path through a non-table gives nothing.
    assert!(s.complete("df.x.y", 6).matches.is_empty());
}

#[test]
fn inspection_shows_doc_pages_by_name_and_by_receiver_type() {
    let c = Captured::new();
    c.eval("df = sw.frame{a = {1}}; answer = 42");
    let s = &c.session;
    assert!(s
        .inspect("sw.read_csv", 5)
        .unwrap()
        .starts_with("# sw.read_csv"));
    assert!(s
        .inspect("df:head(3)", 4)
        .unwrap()
        .starts_with("# DataFrame.head"));
    assert_eq!(s.inspect("answer", 2).unwrap(), "answer: integer\n\n42");
    assert_eq!(s.inspect("nothing_here", 3), None);
}

#[test]
fn completeness_follows_the_lua_parser() {
    let c = Captured::new();
    let s = &c.session;
    for code in ["x = 1", "1 + 2", "for i = 1, 2 do end", "sw.frame{a = {1}}"] {
        assert_eq!(s.is_complete(code), Completeness::Complete, "{code}");
    }
    for code in [
        "for i = 1, 2 do",
        "function f()",
        "x = \"abc",
        "x = [[long",
        "t = {",
    ] {
        assert_eq!(s.is_complete(code), Completeness::Incomplete, "{code}");
    }
    for code in ["x = = 1", "end end", "x = \"abc\ny = 1"] {
        assert_eq!(s.is_complete(code), Completeness::Invalid, "{code}");
    }
}

#[test]
fn displays_and_charts_reach_the_front_end_hook() {
    let c = Captured::new();
    let seen: Arc<Mutex<Vec<DisplayEvent>>> = Arc::default();
    let sink = seen.clone();
    c.session.set_display(move |e| sink.lock().unwrap().push(e));
    c.eval(r#"sw.display.markdown("a", {id = "s"}); sw.display.markdown("b", {id = "s", update = true}); sw.display.clear(true)"#);
    let events = seen.lock().unwrap().clone();
    assert_eq!(events.len(), 3);
    assert!(
        matches!(&events[1], DisplayEvent::Show { id: Some(id), update: true, bundle } if id == "s" && bundle.get("text/markdown") == Some("b"))
    );
    assert_eq!(events[2], DisplayEvent::Clear { wait: true });
    let out = c
        .session
        .eval(
            r#"sw.chart.line(sw.frame{s = {1, 2}, l = {0.5, 0.25}}, {x = "s", y = "l"})"#,
            "t",
        )
        .unwrap()
        .unwrap();
    let spec: serde_json::Value =
        serde_json::from_str(out.get("application/vnd.vegalite.v5+json").unwrap()).unwrap();
    assert_eq!(
        spec["data"]["values"][1],
        serde_json::json!({"s": 2.0, "l": 0.25})
    );
    assert_eq!(spec["mark"]["type"], "line");
    let err = c
        .session
        .eval(
            r#"sw.chart.bar(sw.frame{a = {1}}, {x = "a", y = "b"})"#,
            "t",
        )
        .unwrap_err();
    assert!(err.to_string().contains("a column 'b'"), "{err}");
    let err = c
        .session
        .eval(r#"sw.display.markdown("x", {update = true})"#, "t")
        .unwrap_err();
    assert!(err.to_string().contains("an `id` to update"), "{err}");
}
