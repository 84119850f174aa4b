//! `sw.experiment`: the spec is checked before any compute (every table rejects unknown keys),
//! a run is reproducible, custom arms never see B's labels, and the results, PGR table,
//! comparison, manifest and HTML report have the documented shapes.

use crate::util::Captured;

const SPEC: &str = r#"
function spec(extra)
  local s = {
    task = sw.tasks.builtin("sentiment", {n = 200, seed = 1}),
    strong = {model = {hidden_size = 16, layers = 1, heads = 2}, train = {epochs = 1, batch_size = 32, lr = 3e-3}},
    weak = {model = {hidden_size = 8, layers = 1, heads = 2}, train = {epochs = 1, batch_size = 32, lr = 3e-3}},
    overseers = {novices = {overseers = {{id = "a", accuracy = 0.9}, {id = "b", accuracy = 0.6}, {id = "c", accuracy = 0.55}}, k = 3}},
    arms = {"weak", "ceiling", "naive_w2s", "aux_w2s", "crowd_majority_vote", "crowd_dawid_skene", "unassisted_novices", "assisted_novices"},
    seeds = {1, 2},
  }
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end
"#;

#[test]
fn bad_specs_fail_before_any_compute() {
    let c = Captured::new();
    c.eval(SPEC);
    let cases = [
        ("sw.experiment 'x' (spec{arm = {}})", "spec.arm"),
        (
            "sw.experiment 'x' (spec{arms = {'weak', 'best'}})",
            "arms[2]",
        ),
        (
            "sw.experiment 'x' (spec{arms = {'crowd_bradley_terry'}})",
            "crowd_<method>",
        ),
        (
            "sw.experiment 'x' (spec{arms = {'crowd_majority_vote'}, overseers = sw.null})",
            "overseers.novices",
        ),
        (
            "sw.experiment 'x' (spec{weak = {model = {}, optimizer = {}}})",
            "spec.weak.optimizer",
        ),
        ("sw.experiment 'x' (spec{task = 3})", "spec.task"),
        (
            "sw.experiment 'x' (spec{hooks = {on_finish = print}})",
            "spec.hooks.on_finish",
        ),
        (
            "sw.experiment 'x' (spec{hooks = {on_step = 3}})",
            "spec.hooks.on_step",
        ),
        (
            "sw.experiment 'x' (spec{strong = {model = {path = 3}}})",
            "path",
        ),
        (
            "sw.experiment 'x' (spec{strong = {model = {path = 'no/such/dir'}}})",
            "no/such/dir",
        ),
        // Typos inside the nested tables are errors too (they used to fall back to defaults).
        (
            "sw.experiment 'x' (spec{aux = {warmup = 0.2}})",
            "spec.aux.warmup",
        ),
        (
            "sw.experiment 'x' (spec{assistance = {trsut = 1}})",
            "spec.assistance.trsut",
        ),
        (
            "sw.experiment 'x' (spec{split = {tset = 0.1}})",
            "spec.split.tset",
        ),
        (
            "sw.experiment 'x' (spec{weak = {model = {}, train = {epoch = 2}}})",
            "spec.weak.train.epoch",
        ),
        (
            "sw.experiment 'x' (spec{strong = {model = {hiden_size = 2}}})",
            "hiden_size",
        ),
        (
            "sw.experiment 'x' (spec{strong = {model = {seed = 2}}})",
            "set by the experiment",
        ),
        // Values out of range.
        (
            "sw.experiment 'x' (spec{split = {test = 1.5}})",
            "split.test",
        ),
        ("sw.experiment 'x' (spec{seeds = {1.5}})", "spec.seeds[1]"),
        ("sw.experiment 'x' (spec{seeds = {1, 1}})", "distinct seeds"),
        ("sw.experiment 'x' (spec{level = 2})", "level"),
        ("sw.experiment 'x' (spec{n_boot = 100})", "spec.n_boot"),
        (
            "sw.experiment 'x' (spec{aux = {aux_coef = -1}})",
            "aux.aux_coef",
        ),
        (
            "sw.experiment 'x' (spec{aux = {schedule = 'cosine'}})",
            "spec.aux.schedule",
        ),
        (
            "sw.experiment 'x' (spec{assistance = {calibration = -1}})",
            "assistance.calibration",
        ),
        (
            "sw.experiment 'x' (spec{weak = {model = {}, train = {batch_size = 0}}})",
            "batch_size",
        ),
        (
            "sw.experiment 'x' (spec{arms = {'weak', 'weak'}})",
            "each arm once",
        ),
        // Unknown option keys of the methods and of rerun are errors too, before any work.
        ("(sw.experiment 'x' (spec())):pgr{nboot = 10}", "nboot"),
        (
            "sw.experiment.rerun('no/such/dir', {tasks = 1})",
            "rerun.tasks",
        ),
        ("(sw.experiment 'x' (spec())):accuracy()", "run"),
    ];
    for (code, needle) in cases {
        let err = c.error(code);
        assert!(
            err.to_lowercase().contains("experiment") && err.contains(needle),
            "{code}: {err}"
        );
    }
}

#[test]
fn a_run_is_reproducible_and_reports_every_arm_in_order() {
    let c = Captured::new();
    c.eval(SPEC);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let out = c.eval(&format!(
        r#"
        local done, steps = {{}}, {{}}
        local s = spec{{hooks = {{
          on_arm_done = function(arm, seed, acc) done[#done + 1] = arm end,
          on_step = function(arm, seed, r) steps[arm] = (steps[arm] or 0) + 1; assert(r.step <= r.total and r.loss == r.loss) end,
        }}}}
        local a = sw.experiment "t" (s)
        local r1 = a:run()
        local r2 = sw.experiment "t" (spec()):run()
        local v1, v2 = r1:column("value"), r2:column("value")
        local same = #v1 == #v2
        for i = 1, #v1 do same = same and (v1[i] == v2[i] or (v1[i] ~= v1[i] and v2[i] ~= v2[i])) end
        local p = a:report({report:?})
        local acc = a:accuracy()
        local cmp = a:compare("aux_w2s", "naive_w2s")
        -- 200 items: 40 test, 80 in each half; one epoch of batches of 32 is 3 steps per model.
        -- The assistant's two folds (40 items each) take 2 steps each.
        return table.concat({{r1:height(), tostring(same), p:height(), #done, steps.weak, steps.crowd_dawid_skene,
          steps.assistant, table.concat(acc:column("arm"), ","), table.concat(p:columns(), ","),
          cmp:height(), tostring(a:curves():height() > 0), a:items():height()}}, " ")
        "#
    ));
    // Per seed: 8 test accuracies + label accuracy for 6 supervised arms + alpha for 4 novice
    // arms = 18; two seeds.
    assert_eq!(
        out,
        "36 true 6 16 6 6 8 weak,ceiling,naive_w2s,aux_w2s,crowd_majority_vote,crowd_dawid_skene,unassisted_novices,assisted_novices arm,pgr,lower,upper,seeds,inverted_seeds,note 2 true 640"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("<svg") && html.contains("crowd_dawid_skene") && !html.contains("<script")
    );
    // Titled tables; the assistance comparison; one raw and one smoothed curve per arm of the
    // first seed (8 arms and the assistant's two folds).
    assert!(html.contains("<h2>Test accuracy by arm"), "{html}");
    assert!(html.contains("Assistance: the same novices"), "{html}");
    assert_eq!(html.matches("<polyline").count(), 2 * 8, "{html}");
    assert!(html.contains("label_accuracy") && html.contains("Training loss"));
    // Arms in the spec's order, not alphabetically.
    let (naive, crowd) = (
        html.find("naive_w2s").unwrap(),
        html.find("crowd_dawid_skene").unwrap(),
    );
    assert!(naive < crowd);
}

#[test]
fn a_saved_experiment_reruns_to_the_same_numbers_and_old_manifests_are_named() {
    let c = Captured::new();
    c.eval(SPEC);
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let old = dir.path().join("old");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(
        old.join("manifest.json"),
        r#"{"name": "x", "spec": {}, "sandwich": "0.1.0", "git_revision": "e38b182"}"#,
    )
    .unwrap();
    let out = c.eval(&format!(
        r#"
        local task = sw.tasks.builtin("sentiment", {{n = 160, seed = 4}})
        local exp = sw.experiment "saved" (spec{{task = task, arms = {{"weak", "ceiling", "crowd_mace"}}}})
        exp:run()
        exp:save({run:?})
        local ok, err = pcall(sw.experiment.rerun, {run:?})
        local wrong = pcall(sw.experiment.rerun, {run:?}, {{task = sw.tasks.builtin("sentiment", {{n = 160, seed = 5}})}})
        local _, same = sw.experiment.rerun({run:?}, {{task = task}})
        local _, old = pcall(sw.experiment.rerun, {old:?})
        return tostring(ok) .. " " .. tostring(wrong) .. " " .. tostring(same) .. " "
          .. tostring(tostring(err):find("task DataFrame", 1, true) ~= nil) .. " "
          .. tostring(tostring(old):find("sandwich 0.1.0 (git e38b182)", 1, true) ~= nil)
        "#
    ));
    assert_eq!(out, "false false true true true");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], 2);
    assert_eq!(manifest["spec"]["task"]["rows"], 160);
    assert_eq!(manifest["device"], "cpu");
    assert_eq!(manifest["spec"]["aux"]["schedule"], "reference");
    assert!(manifest["task_hash"].as_str().unwrap().len() == 16);
    for f in ["report.html", "results.csv", "items.csv", "curves.csv"] {
        assert!(run.join(f).is_file(), "{f}");
    }
}

#[test]
fn a_pretrained_checkpoint_can_be_the_strong_model() {
    let c = Captured::new();
    c.eval(SPEC);
    let dir = tempfile::tempdir().unwrap();
    let (tok, ckpt) = (dir.path().join("tok"), dir.path().join("ckpt"));
    let out = c.eval(&format!(
        r#"
        local task = sw.tasks.builtin("sentiment", {{n = 200, seed = 1}})
        sw.tasks.tokenizer(task, {tok:?})
        sw.model.new{{arch = "bert", tokenizer = {tok:?}, hidden_size = 16, layers = 1, heads = 2, seed = 9}}:save({ckpt:?})
        local exp = sw.experiment "pretrained" (spec{{task = task, arms = {{"weak", "ceiling", "naive_w2s"}},
          strong = {{model = {{path = {ckpt:?}}}, train = {{epochs = 1, batch_size = 32, lr = 1e-3}}}}}})
        local r = exp:run()
        local bad = select(2, pcall(sw.experiment "x", spec{{strong = {{model = {{path = {ckpt:?}, layers = 3}}}}}}))
        return r:height() .. " " .. tostring(tostring(bad):find("layers", 1, true) ~= nil)
        "#
    ));
    // A load option that sw.model.load does not know is an error naming the key, before any
    // compute. Per seed: 3 test accuracies and naive's label accuracy.
    assert_eq!(out, "8 true");
}

#[test]
fn a_custom_arm_written_in_lua_is_trained_scored_and_rerun_without_seeing_b_labels() {
    let c = Captured::new();
    c.eval(SPEC);
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = c.eval(&format!(
        r#"
        -- An arm is a way to supervise B: here the crowd's majority, but only where the weak
        -- model agrees with it (else the weak model's label).
        local seen = {{}}
        local function agree(ctx)
          seen.b = table.concat(ctx.b:columns(), ",")
          seen.weak = table.concat(ctx.weak_predictions:columns(), ",")
          local votes = sw.aggregate.majority_vote(ctx.novices()).labels:select(sw.col("task"):alias("id"), sw.col("label"):alias("crowd"))
          return ctx.weak_predictions:join(votes, {{on = "id"}})
            :select("id", sw.when(sw.col("pred"):eq(sw.col("crowd"))):then_(sw.col("crowd")):otherwise(sw.col("pred")):alias("label"))
        end
        local function soft(ctx) return ctx.weak_predictions:select("id", "p0", "p1") end
        local task = sw.tasks.builtin("sentiment", {{n = 200, seed = 1}})
        local exp = sw.experiment "custom" (spec{{task = task, arms = {{"weak", "ceiling", {{name = "agree", supervise = agree}}, {{name = "soft_copy", supervise = soft}}}}}})
        local r = exp:run()
        exp:save({run:?})
        local arms = table.concat(exp:pgr():column("arm"), ",")
        local rows = r:filter(sw.col("split"):eq("train_b")):height()
        local bad = {{
          select(2, pcall(sw.experiment "x", spec{{arms = {{"weak", {{name = "ceiling", supervise = agree}}}}}})),
          select(2, pcall(sw.experiment "x", spec{{arms = {{"weak", {{name = "nope"}}}}}})),
          select(2, pcall(function() sw.experiment "x" (spec{{arms = {{"weak", {{name = "bad", supervise = function() return 3 end}}}}}}):run() end)),
          select(2, pcall(function() sw.experiment "x" (spec{{arms = {{"weak", {{name = "half", supervise = function(ctx) return soft(ctx):head(3) end}}}}}}):run() end)),
          select(2, pcall(function() sw.experiment "x" (spec{{arms = {{"weak", {{name = "boom", supervise = function() error("my arm failed") end}}}}}}):run() end)),
          select(2, pcall(sw.experiment.rerun, {run:?}, {{task = task}})),
        }}
        local _, same = sw.experiment.rerun({run:?}, {{task = task, supervise = {{agree = agree, soft_copy = soft}}}})
        local msgs = {{}}
        for i, e in ipairs(bad) do msgs[i] = tostring(e):gsub("\n.*", "") end
        return arms .. " | " .. rows .. " | " .. seen.b .. " | " .. seen.weak .. " | " .. tostring(same) .. "\n" .. table.concat(msgs, "\n")
        "#
    ));
    let mut lines = out.lines();
    // Both arms get a label-accuracy row per seed (soft labels by their most probable class).
    // B is only `id, input`; the weak predictions carry no `label`.
    assert_eq!(
        lines.next().unwrap(),
        "agree,soft_copy | 4 | id,input | id,input,pred,p0,p1 | true"
    );
    let msgs: Vec<&str> = lines.collect();
    for (msg, needle) in msgs.iter().zip([
        "custom arm names that are not built-in",
        "spec.arms[2].supervise",
        "to return a DataFrame",
        "all 80 items of B",
        "my arm failed",
        "custom arm 'agree'",
    ]) {
        assert!(msg.contains(needle), "{msg} lacks {needle}");
    }
}
