use std::sync::Arc;
use std::time::{Duration, Instant};

use sandwich_lua::{Error, Session};

use crate::util::Captured;

#[test]
fn globals_persist_between_evals() {
    let c = Captured::new();
    c.eval("x = 41");
    assert_eq!(c.eval("x + 1"), "42");
    c.eval("local y = 1; function f() return x * 2 end");
    assert_eq!(c.eval("f()"), "82");
}

#[test]
fn value_of_last_expression_and_suppression() {
    let c = Captured::new();
    assert_eq!(c.eval("1 + 2"), "3");
    assert_eq!(c.eval("local a = 2\na * 10"), "20");
    assert_eq!(c.eval("x = 5;"), "");
    assert_eq!(c.eval("x;"), "");
    assert_eq!(c.eval("'hi', 3"), "hi\t3");
    assert_eq!(c.eval("{1, 2, a = 'b'}"), "{1, 2, a = \"b\"}");
    assert_eq!(c.eval("nil"), "");
}

#[test]
fn print_and_io_write_go_to_the_sink() {
    let c = Captured::new();
    c.eval("print('a', 1, true); io.write('b', 2); io.stderr:write('oops')");
    assert_eq!(c.take(), "a\t1\ttrue\nb2[stderr] oops");
}

#[test]
fn require_and_global_sw_are_the_same_module() {
    let c = Captured::new();
    assert_eq!(c.eval("require('sandwich') == sw"), "true");
}

#[test]
fn dataframe_results_have_text_and_html() {
    let s = Session::new().unwrap();
    let b = s
        .eval("sw.frame{a = {1, 2}, b = {'x', '<y>'}}", "t")
        .unwrap()
        .unwrap();
    assert!(b.text().contains("shape: (2, 2)"), "{}", b.text());
    let html = b.get("text/html").expect("html");
    assert!(
        html.contains("<th>a</th>") && html.contains("&lt;y&gt;"),
        "{html}"
    );
    assert!(html.contains("<i>i64</i>"), "{html}");
}

#[test]
fn html_cuts_long_frames_in_the_middle() {
    let s = Session::new().unwrap();
    let code = "local t = {} for i = 1, 100 do t[i] = i end return sw.frame{i = t}";
    let b = s.eval(code, "t").unwrap().unwrap();
    let html = b.get("text/html").unwrap();
    assert!(html.contains("shape: (100, 1)"));
    assert!(html.contains("<td>…</td>"));
    assert!(html.contains("<td>1</td>") && html.contains("<td>100</td>"));
    assert!(!html.contains("<td>50</td>"));
}

#[test]
fn errors_carry_a_traceback_with_the_chunk_and_line() {
    let s = Session::new().unwrap();
    let err = s
        .eval(
            "local function inner()\n  error('boom')\nend\ninner()",
            "In [7]",
        )
        .unwrap_err();
    let Error::Script {
        message, traceback, ..
    } = err
    else {
        panic!("expected a script error, got {err:?}")
    };
    assert!(message.contains("In [7]:2: boom"), "{message}");
    assert!(traceback.contains("In [7]:2"), "{traceback}");
    assert!(traceback.contains("In [7]:4"), "{traceback}");
    assert!(!traceback.contains("xpcall"), "{traceback}");
}

#[test]
fn rust_errors_keep_their_cause_chain() {
    let s = Session::new().unwrap();
    let err = s.eval("sw.read_csv('/no/such/file.csv')", "t").unwrap_err();
    assert_eq!(err.kind(), sandwich_lua::ErrorKind::Data, "{err:?}");
    let Error::Script {
        message,
        causes,
        traceback,
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("read_csv") && message.contains("/no/such/file.csv"),
        "{message}"
    );
    assert!(
        message.contains("No such file") || causes.iter().any(|c| c.contains("No such file")),
        "{message} {causes:?}"
    );
    assert!(traceback.contains("read_csv"), "{traceback}");
}

/// What `pcall` catches carries the causes too (the missing column's name, the IO error), not
/// only "polars rejected the operation".
#[test]
fn errors_caught_with_pcall_carry_their_causes() {
    let c = Captured::new();
    let out = c.eval(
        "local _, a = pcall(sw.read_csv, '/no/such/file.csv')\n\
         local _, b = pcall(function() return sw.frame{x = {1}}:select('nope') end)\n\
         return tostring(a) .. '|' .. tostring(b)",
    );
    assert!(out.contains("No such file"), "{out}");
    assert!(
        out.contains("DataFrame.select") && out.contains("nope"),
        "{out}"
    );
}

#[test]
fn statements_then_an_expression_on_one_line_show_the_expression() {
    let c = Captured::new();
    assert_eq!(c.eval("print(1); 5"), "5");
    assert_eq!(c.take(), "1\n");
    assert_eq!(c.eval("local t = {}; t.x = 'a;b'; t.x"), "a;b");
    assert_eq!(c.eval("y = 3; y = y + 1;"), "");
}

#[test]
fn syntax_errors_are_reported_without_running_anything() {
    let c = Captured::new();
    let err = c.session.eval("x = 1\nif then", "cell").unwrap_err();
    assert!(matches!(err, Error::Syntax(_)), "{err:?}");
    assert!(err.to_string().contains("cell:2"), "{err}");
    assert_eq!(c.eval("x"), "");
}

#[test]
fn a_panic_in_a_callback_is_an_error_not_an_abort() {
    let s = Session::new().unwrap();
    let f = s
        .lua()
        .create_function(|_, ()| -> mlua::Result<()> { panic!("boom from Rust") })
        .unwrap();
    s.lua().globals().set("explode", f).unwrap();
    let err = s.eval("explode()", "t").unwrap_err();
    assert!(err.to_string().contains("boom from Rust"), "{err}");
    // Uncaught, it is an internal error (the CLI's distinct exit status), through a Lua
    // function too.
    assert!(matches!(err, Error::Panic(_)), "{err:?}");
    let err = s
        .eval("local function f() explode() end f()", "t")
        .unwrap_err();
    assert!(matches!(err, Error::Panic(_)), "{err:?}");
    // The session is still usable afterwards.
    assert_eq!(s.eval("1 + 1", "t").unwrap().unwrap().text(), "2");
}

#[test]
fn interrupt_stops_an_infinite_loop_and_keeps_globals() {
    let s = Arc::new(Session::new().unwrap());
    s.eval("kept = 'yes'", "t").unwrap();
    let handle = s.interrupt_handle();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        handle.request();
    });
    let start = Instant::now();
    let err = s.eval("while true do end", "t").unwrap_err();
    stopper.join().unwrap();
    assert!(matches!(err, Error::Interrupted), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(s.eval("kept", "t").unwrap().unwrap().text(), "yes");
}

#[test]
fn interrupt_is_not_swallowed_by_pcall() {
    let s = Arc::new(Session::new().unwrap());
    let handle = s.interrupt_handle();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        handle.request();
    });
    let err = s.eval(
        "while true do pcall(function() while true do end end) end",
        "t",
    );
    stopper.join().unwrap();
    assert!(matches!(err, Err(Error::Interrupted)), "{err:?}");
}

#[test]
fn run_file_sets_arg_and_varargs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.lua");
    std::fs::write(
        &path,
        "#!/usr/bin/env sandwich\nresult = arg[1] .. select(2, ...) .. #arg",
    )
    .unwrap();
    let s = Session::new().unwrap();
    s.run_file(&path, &["a".into(), "b".into()]).unwrap();
    assert_eq!(s.eval("result", "t").unwrap().unwrap().text(), "ab2");
    assert!(s
        .eval("arg[0]", "t")
        .unwrap()
        .unwrap()
        .text()
        .ends_with("script.lua"));
}

#[test]
fn listed_methods_exist() {
    // `sw._methods` lists are written by hand; each name must resolve to a callable method.
    let c = Captured::new();
    let out = c.eval(
        r#"
        local df = sw.frame{a = {1}}
        local bad = {}
        for _, v in ipairs{df, df:lazy(), sw.col("a"), sw.col("a").str, df:group_by("a"), sw.when(sw.col("a"):eq(1))} do
          local names = sw._methods(v)
          assert(#names > 0)
          for _, m in ipairs(names) do
            if type(v[m]) ~= "function" then bad[#bad + 1] = m end
          end
        end
        return #bad == 0 and "ok" or table.concat(bad, ",")
        "#,
    );
    assert_eq!(out, "ok");
}

/// Front ends map errors by their kind, carried up from where they were raised, never by the
/// words of the message (a bad argument to `sw.model.new` is a configuration error, not a
/// model error because its name says "model").
#[test]
fn errors_carry_their_kind_through_lua() {
    use sandwich_lua::ErrorKind;
    let s = Session::new().unwrap();
    let kind = |code: &str| s.eval(code, "t").unwrap_err().kind();
    assert_eq!(kind("sw.model.new{arch = 'nope'}"), ErrorKind::Config);
    assert_eq!(kind("sw.frame{a = {1, 2}}:select{'zz'}"), ErrorKind::Data);
    assert_eq!(kind("sw.frame(5)"), ErrorKind::Config);
    assert_eq!(kind("error('mine')"), ErrorKind::Other);
    // An error passed through a Lua function keeps the kind of what raised it.
    assert_eq!(
        kind("local function f() return sw.read_csv('/no/such.csv') end f()"),
        ErrorKind::Data
    );
    assert_eq!(kind("local x = "), ErrorKind::Config);
}
