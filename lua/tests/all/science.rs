//! The science the experiments exist for, checked on the built-in task with the quickstart's
//! models (`workbooks/quickstart.lua`): a strong model trained on the truth beats the weak
//! supervisor by a clear margin, and with a crowd of heterogeneous novices (careful ones,
//! spammers, one biased) Dawid-Skene's labels and the strong model trained on them recover at
//! least as much of the gap as majority vote's; and the task's `difficulty` marks the items the
//! trained weak model gets wrong. One seed, about a minute on two cores.

use crate::util::Captured;

#[test]
fn ceiling_beats_weak_and_dawid_skene_beats_majority_vote_with_mixed_novices() {
    let c = Captured::new();
    let out = c.eval(
        r#"
        local exp = sw.experiment "science" {
          task = {builtin = "sentiment", n = 5000, seed = 7},
          strong = {model = {hidden_size = 48, layers = 2, heads = 4},
                    train = {epochs = 8, batch_size = 64, lr = 3e-3, warmup_steps = 20}},
          weak = {model = {hidden_size = 8, layers = 1, heads = 2},
                  train = {epochs = 4, batch_size = 32, lr = 3e-3}},
          overseers = {novices = {k = 5, overseers = {
            {id = "careful-1", accuracy = 0.9}, {id = "careful-2", accuracy = 0.85},
            {id = "careful-3", accuracy = 0.85}, {id = "random-1", kind = "spammer"},
            {id = "random-2", kind = "spammer"}, {id = "random-3", kind = "spammer"},
            {id = "leaning", accuracy = 0.8, bias = "1", bias_strength = 0.6},
          }}},
          arms = {"weak", "ceiling", "crowd_majority_vote", "crowd_dawid_skene"},
          seeds = {3},
        }
        local r = exp:run()
        local function value(arm, metric)
          return r:filter(sw.col("arm"):eq(arm):and_(sw.col("metric"):eq(metric))):column("value")[1]
        end
        local pgr = {}
        local p = exp:pgr()
        for i, arm in ipairs(p:column("arm")) do pgr[arm] = p:column("pgr")[i] end
        -- The weak model's accuracy on the test items of each difficulty (the skimmer's rule).
        local task = sw.tasks.builtin("sentiment", {n = 5000, seed = 7}):select("id", "difficulty")
        local by = exp:items():filter(sw.col("arm"):eq("weak")):join(task, {on = "id"})
          :group_by("difficulty"):agg{sw.col("correct"):cast("f64"):mean():alias("acc")}
        local at = {}
        for i, d in ipairs(by:column("difficulty")) do at[d] = by:column("acc")[i] end
        return string.format("%.4f %.4f %.4f %.4f %.4f %.4f %.4f %.4f",
          value("weak", "accuracy"), value("ceiling", "accuracy"),
          value("crowd_majority_vote", "label_accuracy"), value("crowd_dawid_skene", "label_accuracy"),
          pgr.crowd_majority_vote, pgr.crowd_dawid_skene, at[0], at[1])
        "#,
    );
    let v: Vec<f64> = out.split(' ').map(|x| x.parse().unwrap()).collect();
    let (weak, ceiling, mv_labels, ds_labels, mv_pgr, ds_pgr) =
        (v[0], v[1], v[2], v[3], v[4], v[5]);
    let (weak_easy, weak_hard) = (v[6], v[7]);
    eprintln!("science: {out}");
    assert!(ceiling - weak >= 0.05, "ceiling {ceiling} vs weak {weak}");
    assert!(
        ds_labels > mv_labels,
        "labels: DS {ds_labels} vs MV {mv_labels}"
    );
    assert!(ds_pgr >= mv_pgr, "PGR: DS {ds_pgr} vs MV {mv_pgr}");
    // `difficulty` means what the weak side gets wrong: the trained weak model is mostly right
    // where the skimmer's rule says easy and mostly wrong where it says hard.
    assert!(
        weak_easy >= 0.75 && weak_hard <= 0.5,
        "weak accuracy at difficulty 0: {weak_easy}, at 1: {weak_hard}"
    );
}
