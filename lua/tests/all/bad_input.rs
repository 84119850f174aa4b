//! The bad-input campaign of issue 15, kept and grown here: inputs that once panicked (killing
//! a script even inside `pcall`) or were accepted in silence must each give a catchable error
//! that names the function and what was expected.

use crate::util::{lua_str, Captured};

/// Runs each case inside `pcall`; returns, per case, `ok|message` (the first line).
fn caught(c: &Captured, cases: &[&str]) -> Vec<(bool, String)> {
    let body: String = cases
        .iter()
        .map(|code| format!("try(function() return {code} end)\n"))
        .collect();
    let out = c.eval(&format!(
        r#"
        local results = {{}}
        local function try(f)
          local ok, err = pcall(f)
          results[#results + 1] = tostring(ok) .. "|" .. (ok and "" or tostring(err):gsub("\n", " "))
        end
        {body}
        return table.concat(results, "\n")
        "#
    ));
    out.lines()
        .map(|l| {
            let (ok, msg) = l.split_once('|').unwrap();
            (ok == "true", msg.to_string())
        })
        .collect()
}

#[test]
fn the_reported_panics_are_catchable_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = lua_str(dir.path().to_str().unwrap());
    let c = Captured::new();
    c.eval(
        "empty = sw.frame{a = {1, 2}, s = {'x', 'y'}}:head(0); \
         nulls = sw.frame{a = {sw.null, sw.null}, s = {sw.null, sw.null}}; \
         cmp = sw.frame{worker = {'w', 'w'}, left = {'a', 'b'}, right = {'b', 'c'}, label = {'a', 'c'}};",
    );
    let read_dir = format!("sw.read_json({d})");
    let cases = [
        "empty:describe()",
        "nulls:describe()",
        "sw.metrics.bt_ratings(cmp, {level = 2})",
        "sw.metrics.bt_ratings(cmp, {n_boot = 0})",
        read_dir.as_str(),
    ];
    let r = caught(&c, &cases);
    // describe of nothing is defined: counts, and nulls for the rest.
    assert!(r[0].0 && r[1].0, "{r:?}");
    let described = c.eval("return tostring(nulls:describe():column('a')[1]) .. ' ' .. tostring(empty:describe():column('a')[3] == sw.null)");
    assert_eq!(described, "0 true");
    for (i, want) in [(2, "level"), (3, "n_boot"), (4, "a directory")] {
        assert!(!r[i].0, "{}: accepted", cases[i]);
        assert!(
            r[i].1.contains(want) && !r[i].1.contains("panic"),
            "{}: {}",
            cases[i],
            r[i].1
        );
    }
    assert!(r[2].1.contains("bt_ratings"), "{}", r[2].1);
    assert!(r[4].1.contains("read_json"), "{}", r[4].1);
}

/// Inputs once accepted in silence: each is now an error naming the function and, where there
/// is one, the option.
#[test]
fn nonsense_is_refused_not_accepted_in_silence() {
    let dir = tempfile::tempdir().unwrap();
    let c = Captured::new();
    c.eval(&format!(
        "df = sw.frame{{a = {{1, 2, 3}}, b = {{'x', 'y', 'z'}}}}; \
         cmp = sw.frame{{worker = {{'w', 'w'}}, left = {{'a', 'b'}}, right = {{'b', 'c'}}, label = {{'a', 'c'}}}}; \
         tok = {}; sw.tasks.tokenizer(sw.tasks.builtin('sentiment', {{n = 50}}), tok); \
         m = sw.model.new{{arch = 'bert', tokenizer = tok, hidden_size = 8, layers = 1, heads = 2, num_labels = 2}}; \
         task = sw.tasks.builtin('sentiment', {{n = 32}});",
        lua_str(dir.path().join("tok").to_str().unwrap())
    ));
    let cases: &[(&str, &[&str])] = &[
        ("df:filter(sw.col('a') == 1)", &["DataFrame.filter", "boolean", ":eq"]),
        ("sw.when(sw.col('a') == 1)", &["sw.when", "boolean"]),
        ("sw.frame{a = {1, nil, 3}}", &["sw.frame", "'a'", "position 2", "sw.null"]),
        ("sw.frame{a = {f = 1}}", &["sw.frame", "'a'", "key 'f'"]),
        ("sw.metrics.brier(sw.frame{truth = {1, 0}, score = {0/0, 0.5}})", &["brier", "score"]),
        ("sw.metrics.auroc(sw.frame{truth = {1, 0}, score = {0/0, 0.5}})", &["auroc", "score"]),
        ("sw.model.new{arch = 'bert', vocab_size = 10, hidden_size = 0}", &["model.new", "hidden_size"]),
        ("sw.model.new{arch = 'bert', vocab_size = 10, intermediate_size = 0}", &["model.new", "intermediate_size"]),
        ("sw.model.new{arch = 'llama', vocab_size = 10, rope_theta = -1}", &["model.new", "rope_theta"]),
        ("sw.model.new{arch = 'llama', vocab_size = 10, rope_theta = 0/0}", &["model.new", "rope_theta"]),
        ("sw.train.classify{model = m, data = task, text = 'input', beta1 = 1.5}", &["beta1", "[0, 1)"]),
        ("sw.train.classify{model = m, data = task, text = 'input', eps = -1}", &["eps"]),
        ("sw.train.classify{model = m, data = task, text = 'input', max_grad_norm = -1}", &["max_grad_norm"]),
        ("sw.train.classify{model = m, data = task, text = 'input', weight_decay = 0/0}", &["weight_decay"]),
        ("sw.train.classify{model = m, data = task, text = 'input', batch_size = 0}", &["batch_size", "positive"]),
        ("sw.lora{model = m, alpha = 0/0}", &["lora", "alpha"]),
        ("sw.lora{model = m, targets = {}}", &["lora", "targets", "at least one module"]),
        ("sw.aggregate.zero_based_skill(sw.frame{task = {'t'}, worker = {'w'}, label = {'x'}}, {lr_init = -1})", &["zero_based_skill", "lr_init"]),
        ("sw.aggregate.zero_based_skill(sw.frame{task = {'t'}, worker = {'w'}, label = {'x'}}, {lr_reduce_factor = 0/0})", &["lr_reduce_factor"]),
        ("df:drop_nulls{subset = 'nope'}", &["drop_nulls", "subset", "key 'subset'"]),
        ("sw.tasks.from(sw.frame{id = {'a', 'b'}, input = {'x', 'y'}, label = {1, 2}})", &["tasks.from", "class [0]"]),
        ("df:select('a'):with_columns{sw.col('a'):clip(5, 1)}", &["Expr.clip", "lower ≤ upper"]),
        ("sw.metrics.win_rates(sw.frame{worker = {'w'}, left = {'a'}, right = {'a'}, label = {'a'}})", &["win_rates", "left ≠ right"]),
        ("sw.metrics.win_rates(cmp, {x = 1})", &["win_rates", "unknown field `x`"]),
        ("sw.json.encode{1, 2, x = 3}", &["sw.json.encode", "not both"]),
        ("df:head('3')", &["DataFrame.head", "an integer", "string"]),
        ("df:rename{a = 5}", &["DataFrame.rename", "mapping"]),
        ("sw.concat{df, df:lazy()}", &["sw.concat", "a mix"]),
        ("m:save('')", &["Model.save", "non-empty"]),
        // NaN and infinity have no JSON form: the conversion would make them null, the default.
        ("sw.model.new{arch = 'gpt2', vocab_size = 10, hidden_size = 8, heads = 2}:generate({'a'}, {top_p = 0/0})", &["Model.generate", "top_p", "finite"]),
        ("sw.experiment 'x' {task = task, strong = {model = {}}, weak = {model = {}}, arms = {'weak'}, level = 1/0}", &["sw.experiment", "spec.level", "finite"]),
        ("m:predict(task, {column = 'input', batch_size = 0})", &["batch_size"]),
    ];
    let codes: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let results = caught(&c, &codes);
    let mut failures = Vec::new();
    for ((code, wants), (ok, message)) in cases.iter().zip(&results) {
        if *ok {
            failures.push(format!("{code}: accepted"));
        } else if let Some(w) = wants.iter().find(|w| !message.contains(*w)) {
            failures.push(format!("{code}: no {w:?} in: {message}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A wrong value in an options table is said in Lua's words, not Rust's type names.
#[test]
fn option_errors_do_not_leak_rust_type_names() {
    let c = Captured::new();
    let r = caught(
        &c,
        &[
            "sw.aggregate.dawid_skene(sw.frame{task = {'t'}, worker = {'w'}, label = {'x'}}, {n_iter = -1})",
            "sw.tasks.builtin('sentiment', {n = 1.5})",
        ],
    );
    for (ok, message) in &r {
        assert!(!ok);
        assert!(
            !message.contains("usize") && !message.contains("u64") && !message.contains("f64"),
            "{message}"
        );
    }
    assert!(
        r[0].1.contains("options.n_iter") && r[0].1.contains("non-negative integer"),
        "{}",
        r[0].1
    );
}

/// Option tables are lists or maps at every depth: a hole or a stray key is an error, not data
/// silently lost in the conversion.
#[test]
fn option_tables_with_holes_or_mixed_keys_are_errors() {
    let c = Captured::new();
    let r = caught(
        &c,
        &[
            "sw.overseers.simulate{gold = sw.frame{task = {'t'}, true_label = {'a'}}, overseers = {{id = 'x'}, nil, {id = 'y'}}}",
            "sw.read_csv('x.csv', {'a', columns = {'b'}})",
        ],
    );
    assert!(
        !r[0].0 && r[0].1.contains("options.overseers") && r[0].1.contains("position 2"),
        "{}",
        r[0].1
    );
    assert!(!r[1].0 && r[1].1.contains("not both"), "{}", r[1].1);
}

/// The last line of defence: a panic inside any function registered the way every `sw`
/// function is (`GuardedLua`) is an error that Lua's `pcall` catches and can print, and,
/// uncaught, an error of kind `Internal` (the command line's exit status 70).
#[test]
fn a_panic_inside_a_sw_function_is_catchable_by_pcall() {
    use sandwich_lua::{Error, ErrorKind, GuardedLua};
    let c = Captured::new();
    let f = c
        .session
        .lua()
        .guarded_function(|_, n: i64| -> mlua::Result<i64> {
            if n < 0 {
                panic!("index out of bounds: the len is 0 but the index is {n}")
            }
            Ok(n)
        })
        .unwrap();
    c.session.lua().globals().set("fragile", f).unwrap();
    let r = caught(&c, &["fragile(-3)", "fragile(2)"]);
    assert!(!r[0].0, "{r:?}");
    assert!(
        r[0].1.contains("internal error") && r[0].1.contains("the index is -3"),
        "{}",
        r[0].1
    );
    assert!(r[1].0, "{r:?}");
    // The script printed what it caught (the value is a plain error, not a wrapped panic that
    // would resume on its way back into Rust).
    c.take();
    c.eval("local ok, e = pcall(fragile, -1); print(e)");
    assert!(c.take().contains("the index is -1"));
    match c
        .session
        .eval("local function g() fragile(-5) end g()", "t")
    {
        Err(e @ Error::Script { .. }) => assert_eq!(e.kind(), ErrorKind::Internal, "{e:?}"),
        other => panic!("expected a script error, got {other:?}"),
    }
    assert_eq!(c.eval("1 + 1"), "2");
}

/// Keeps it so: no file of the Lua binding (or the Python one, which makes Lua functions from
/// callables) registers a Rust function for Lua other than through `guard`.
#[test]
fn every_lua_entry_point_is_guarded() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let raw = [
        ".create_function(",
        ".create_function_mut(",
        ".add_method(",
        ".add_method_mut(",
        ".add_function(",
        ".add_function_mut(",
        ".add_meta_method(",
        ".add_meta_method_mut(",
        ".add_meta_function(",
        ".add_meta_function_mut(",
        ".add_async_function(",
        ".add_async_method(",
        ".add_field_method_get(",
        ".add_field_method_set(",
        ".add_field_function_get(",
        ".add_field_function_set(",
    ];
    let mut offenders = vec![];
    for dir in [root.join("src"), root.join("../python/src")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == "guard.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, line) in text.lines().enumerate() {
                // pyo3's module `add_function` registers Python functions, not Lua ones.
                if line.contains("wrap_pyfunction!") {
                    continue;
                }
                if let Some(call) = raw.iter().find(|r| line.contains(*r)) {
                    offenders.push(format!("{}:{}: {call}", path.display(), i + 1));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "unguarded entry points:\n{}",
        offenders.join("\n")
    );
}

/// The campaign, kept: every public `sw` function and every method of every `sw` type is
/// called with each of a set of bad arguments (wrong types, NaN, infinities, negative and
/// fractional numbers, tables with holes or stray keys, objects of the wrong kind), once alone
/// and once after a valid receiver, inside `pcall`. Nothing may escape `pcall`, nothing may
/// panic (a panic would read "internal error"), and no message may speak Rust.
#[test]
fn campaign_over_every_public_function() {
    let dir = tempfile::tempdir().unwrap();
    // A string argument is a path inside a directory that does not exist, under the test's
    // temporary directory: writers given it fail (or write there), never into the tree.
    let missing = lua_str(dir.path().join("no/such/dir/x").to_str().unwrap());
    let tok = lua_str(dir.path().join("tok").to_str().unwrap());
    let campaign = lua_str(dir.path().join("campaign.db").to_str().unwrap());
    let c = Captured::new();
    let report = c.eval(&format!(
        r#"
        local tok = {tok}
        local task = sw.tasks.builtin('sentiment', {{n = 24}})
        sw.tasks.tokenizer(task, tok)
        local df = sw.frame{{a = {{1, 2, 3}}, b = {{'x', 'y', 'z'}}}}
        local model = sw.model.new{{arch = 'gpt2', tokenizer = tok, hidden_size = 8, layers = 1, heads = 2}}
        local objects = {{
          DataFrame = df, LazyFrame = df:lazy(), Expr = sw.col('a'), ["Expr.str"] = sw.col('b').str,
          GroupBy = df:group_by('b'), When = sw.when(sw.col('a'):eq(1)), Model = model,
          Chart = sw.chart.bar(df, {{x = 'b', y = 'a'}}),
          Campaign = sw.feedback.campaign{{path = {campaign}, items = sw.frame{{id = {{'a', 'b'}}, text = {{'x', 'y'}}}},
            kind = 'label', choices = {{'neg', 'pos'}}, raters = {{{{id = 'r'}}}}}},
          -- Small enough that `run` with valid options (an empty table) takes a moment.
          Experiment = sw.experiment 'campaign' {{
            task = sw.tasks.builtin('sentiment', {{n = 40}}),
            strong = {{model = {{hidden_size = 8, layers = 1, heads = 2}}, train = {{epochs = 1}}}},
            weak = {{model = {{hidden_size = 8, layers = 1, heads = 2}}, train = {{epochs = 1}}}},
            arms = {{'weak', 'ceiling'}},
          }},
        }}
        local bad = {{
          0, -1, 1.5, 0/0, 1/0, -1/0, 2^63, '', {missing}, true, {{}}, {{1, nil, 3}}, {{x = 1}},
          {{{{}}}}, {{a = {{f = 1}}}}, function() end, df, sw.col('a'), model,
        }}
        -- A function that waits for a person.
        local skip = {{['sw.input'] = true}}
        local calls, errors, panics, leaks = 0, 0, {{}}, {{}}
        local rust = {{'usize', 'u64', 'i64', 'f64', 'f32', 'u32', 'unwrap()', 'Option<', 'Vec<', 'panicked', 'error converting', '`Lua'}}
        local function try(name, f, ...)
          calls = calls + 1
          local ok, err = pcall(f, ...)
          if ok then return end
          errors = errors + 1
          local msg = tostring(err)
          if msg:find('internal error', 1, true) then panics[#panics + 1] = name .. ': ' .. msg end
          for _, word in ipairs(rust) do
            if msg:find(word, 1, true) then leaks[#leaks + 1] = name .. ': ' .. msg:gsub('\n.*', '') break end
          end
        end
        local function walk(prefix, t, seen)
          local names = {{}}
          for k in pairs(t) do if type(k) == 'string' and k:sub(1, 1) ~= '_' then names[#names + 1] = k end end
          table.sort(names)
          for _, k in ipairs(names) do
            local v, name = t[k], prefix .. '.' .. k
            if type(v) == 'function' and not skip[name] then
              for _, b in ipairs(bad) do
                try(name, v, b)
                try(name, v, df, b)
              end
            elseif type(v) == 'table' and not seen[v] then
              seen[v] = true
              walk(name, v, seen)
            end
          end
        end
        walk('sw', sw, {{}})
        for type_name, obj in pairs(objects) do
          for _, m in ipairs(sw._methods(obj)) do
            local name = type_name .. '.' .. m
            for _, b in ipairs(bad) do
              try(name, function(...) return obj[m](obj, ...) end, b)
              try(name, function(...) return obj[m](obj, ...) end, b, b)
            end
          end
        end
        return ('%d %d\n'):format(calls, errors) .. table.concat(panics, '\n') .. '\n--\n' .. table.concat(leaks, '\n')
        "#
    ));
    let (counts, rest) = report.split_once('\n').unwrap();
    let (panics, leaks) = rest.split_once("--").unwrap();
    eprintln!("campaign: calls, errors = {counts}");
    assert!(panics.trim().is_empty(), "panics:\n{panics}");
    assert!(leaks.trim().is_empty(), "Rust in messages:\n{leaks}");
    let calls: usize = counts.split(' ').next().unwrap().parse().unwrap();
    assert!(calls > 4000, "the campaign shrank: {calls} calls");
}

#[test]
fn sw_rust_names_its_arguments() {
    let c = Captured::new();
    c.eval("df = sw.frame{x = {1.5, 2}}");
    let got = caught(
        &c,
        &[
            "sw.rust.set('../up', df)",
            "sw.rust.set('x', 3)",
            "sw.rust.set(1, df)",
            "sw.rust.get('.hidden')",
            "sw.rust.fn('f')",
            "sw.rust.set('ok', df)",
        ],
    );
    let expect = [
        "sw.rust.set: invalid argument 'name': expected a name of letters, digits",
        "sw.rust.set: bad argument 'frame': expected a DataFrame, got integer",
        "sw.rust.set: bad argument 'name': expected a string, got integer",
        "sw.rust.get: invalid argument 'name'",
        "sw.rust.fn: invalid argument 'name': expected the name of a function a Rust cell exported",
    ];
    for ((ok, msg), want) in got.iter().zip(expect) {
        assert!(
            !ok && msg.starts_with(want),
            "{msg}\n  should start with {want}"
        );
    }
    assert!(got[5].0, "{:?}", got[5]);
}
