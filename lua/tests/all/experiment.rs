//! `sw.experiment`: the spec is checked before any compute, a run is reproducible, and its
//! results, PGR table and HTML report have the documented shapes.

use crate::util::Captured;

const SPEC: &str = r#"
function spec(extra)
  local s = {
    task = sw.tasks.builtin("sentiment", {n = 200, seed = 1}),
    strong = {model = {hidden_size = 16, layers = 1, heads = 2}, train = {epochs = 1, batch_size = 32, lr = 3e-3}},
    weak = {model = {hidden_size = 8, layers = 1, heads = 2}, train = {epochs = 1, batch_size = 32, lr = 3e-3}},
    overseers = {novices = {overseers = {{id = "a", accuracy = 0.9}, {id = "b", accuracy = 0.6}, {id = "c", accuracy = 0.55}}, k = 3}},
    arms = {"weak", "ceiling", "naive_w2s", "aux_w2s", "crowd_majority_vote", "crowd_dawid_skene", "assisted_novices"},
    seeds = {1, 2},
    n_boot = 50,
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
        ("sw.experiment 'x' (spec{arm = {}})", "'spec.arm'"),
        (
            "sw.experiment 'x' (spec{arms = {'weak', 'best'}})",
            "arms[2]",
        ),
        (
            "sw.experiment 'x' (spec{arms = {'crowd_bradley_terry'}})",
            "crowd_<a label aggregation method",
        ),
        (
            "sw.experiment 'x' (spec{arms = {'crowd_majority_vote'}, overseers = {}})",
            "overseers.novices",
        ),
        (
            "sw.experiment 'x' (spec{weak = {model = {}, optimizer = {}}})",
            "weak.optimizer",
        ),
        ("sw.experiment 'x' (spec{task = 3})", "task"),
        (
            "sw.experiment 'x' (spec{hooks = {on_finish = print}})",
            "hooks.on_finish",
        ),
        (
            "sw.experiment 'x' (spec{hooks = {on_step = 3}})",
            "hooks.on_step",
        ),
        (
            "sw.experiment 'x' (spec{strong = {model = {path = 3}}})",
            "strong.model.path",
        ),
        (
            "sw.experiment 'x' (spec{strong = {model = {path = 'no/such/dir'}}})",
            "no/such/dir",
        ),
        // Unknown option keys of the methods and of rerun are errors too, before any work.
        ("(sw.experiment 'x' (spec())):pgr{nboot = 10}", "pgr.nboot"),
        (
            "sw.experiment.rerun('no/such/dir', {tasks = 1})",
            "rerun.tasks",
        ),
    ];
    for (code, needle) in cases {
        let err = c.error(code);
        assert!(
            err.contains("sw.experiment") && err.contains(needle),
            "{code}: {err}"
        );
    }
}

#[test]
fn a_run_is_reproducible_and_reports_every_arm() {
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
        for i = 1, #v1 do same = same and v1[i] == v2[i] end
        local p = a:report({report:?})
        -- 200 items: 40 test, 80 in each half; one epoch of batches of 32 is 3 steps per arm and
        -- seed (the naive model is trained once and also serves the assisted arm).
        return table.concat({{r1:height(), tostring(same), p:height(), #done, steps.weak, steps.crowd_dawid_skene,
          table.concat(r1:columns(), ",")}}, " ")
        "#
    ));
    assert_eq!(out, "26 true 5 14 6 6 arm,seed,split,metric,value");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("<svg") && html.contains("crowd_dawid_skene") && !html.contains("<script")
    );
    // PGR bars, the supervision table and one training curve per arm of the first seed.
    assert_eq!(html.matches("<polyline").count(), 7, "{html}");
    assert!(html.contains("label_accuracy") && html.contains("Training loss"));
}

#[test]
fn a_saved_experiment_reruns_to_the_same_numbers() {
    let c = Captured::new();
    c.eval(SPEC);
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = c.eval(&format!(
        r#"
        local task = sw.tasks.builtin("facts", {{n = 160, seed = 4}})
        local exp = sw.experiment "saved" (spec{{task = task, arms = {{"weak", "ceiling", "crowd_mace"}}}})
        exp:run()
        exp:save({run:?})
        local ok, err = pcall(sw.experiment.rerun, {run:?})
        local wrong = pcall(sw.experiment.rerun, {run:?}, {{task = sw.tasks.builtin("facts", {{n = 160, seed = 5}})}})
        local _, same = sw.experiment.rerun({run:?}, {{task = task}})
        return tostring(ok) .. " " .. tostring(wrong) .. " " .. tostring(same) .. " " .. tostring(err):match("opts.task")
        "#
    ));
    assert_eq!(out, "false false true opts.task");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["spec"]["task"]["rows"], 160);
    assert_eq!(manifest["device"], "cpu");
    assert!(manifest["task_hash"].as_str().unwrap().len() == 16);
    assert!(run.join("report.html").is_file() && run.join("results.csv").is_file());
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
        local bad = select(2, pcall(function()
          sw.experiment "x" (spec{{strong = {{model = {{path = {ckpt:?}, layers = 3}}}}}}):run()
        end))
        return r:height() .. " " .. tostring(tostring(bad):find("layers", 1, true) ~= nil)
        "#
    ));
    // A load option that sw.model.load does not know is its error, naming the key.
    assert_eq!(out, "6 true");
}

#[test]
fn a_custom_arm_written_in_lua_is_trained_scored_and_rerun() {
    let c = Captured::new();
    c.eval(SPEC);
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = c.eval(&format!(
        r#"
        -- An arm is a way to supervise B: here the crowd's gold-free majority, but only where
        -- the weak model agrees with it (else the weak model's label).
        local function agree(ctx)
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
          select(2, pcall(sw.experiment.rerun, {run:?}, {{task = task}})),
        }}
        local _, same = sw.experiment.rerun({run:?}, {{task = task, supervise = {{agree = agree, soft_copy = soft}}}})
        local msgs = {{}}
        for i, e in ipairs(bad) do msgs[i] = tostring(e):match("bad field '([^']+)'") end
        return arms .. " " .. rows .. " " .. table.concat(msgs, ",") .. " " .. tostring(same)
        "#
    ));
    // Hard labels get a label-accuracy row per seed; soft ones none.
    assert_eq!(
        out,
        "agree,soft_copy 2 arms[2].name,arms[2].supervise,arms.bad.supervise,opts.supervise.agree true"
    );
}
