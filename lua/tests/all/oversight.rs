//! The oversight toolkit from Lua: bad input is a clear error (never a panic, never NaN passed
//! on silently), and the methods do what the sandwiching literature expects of them.

use crate::util::Captured;

fn session() -> Captured {
    let c = Captured::new();
    c.eval(
        r#"
        crowd = sw.frame{task = {"t1", "t1", "t2", "t2", "t3"}, worker = {"a", "b", "a", "b", "a"}, label = {"x", "y", "x", "x", "y"}}
        gold = sw.frame{task = {"t1", "t2"}, true_label = {"x", "x"}}
        pairs_ = sw.frame{worker = {"u", "u"}, left = {"m1", "m2"}, right = {"m2", "m3"}, label = {"m1", "m3"}};
        "#,
    );
    c
}

#[test]
fn bad_oversight_input_fails_with_clear_errors() {
    let c = session();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("sw.aggregate.majority_vote(sw.frame{task = {'t'}, annotator = {'a'}, label = {'x'}})", vec!["sw.aggregate.majority_vote", "a column 'worker'"]),
        ("sw.aggregate.majority_vote(sw.frame{task = {'t', 't'}, worker = {'a', 'b'}, label = {'x', sw.null}})", vec!["no missing values in 'label'", "row 2"]),
        ("sw.aggregate.majority_vote(sw.frame{task = {'t'}, worker = {'a'}, label = {1.5}})", vec!["strings or integers in 'label'"]),
        ("sw.aggregate.majority_vote(crowd:head(0))", vec!["empty table"]),
        // NaN labels are floats: labels must be strings or integers.
        ("sw.aggregate.majority_vote(sw.frame{task = {'a', 'b'}, worker = {'u', 'v'}, label = {1, 0/0}})", vec!["strings or integers in 'label'", "f64"]),
        // Mixed label types cannot even form a column.
        ("sw.frame{task = {'a', 'b'}, worker = {'u', 'v'}, label = {1, 'x'}}", vec!["values of one type", "mixed"]),
        ("sw.aggregate.majority_vote(3)", vec!["DataFrame", "integer"]),
        ("sw.aggregate.dawid_skene(crowd, {iterations = 3})", vec!["unknown field `iterations`"]),
        ("sw.aggregate.dawid_skene(crowd, {n_iter = 0})", vec!["n_iter", "positive"]),
        ("sw.aggregate.majority_vote(crowd, {n_iter = 3})", vec!["unknown field `n_iter`"]),
        // Options of another method are not silently ignored.
        ("sw.aggregate.dawid_skene(crowd, {lr_init = 0.5})", vec!["unknown field `lr_init`"]),
        ("sw.aggregate.zero_based_skill(crowd, {tol = 0.1})", vec!["unknown field `tol`"]),
        ("sw.metrics.auroc(sw.frame{truth = {0, 1}, score = {0.2, 0.3}}, {bins = 5})", vec!["unknown field `bins`"]),
        ("sw.overseers.simulate{gold = gold, overseers = {{id = 'a', accuracy = 0.5, bias_strength = 0.5}}}", vec!["bias_strength", "'bias'"]),
        ("sw.overseers.simulate_pairwise{pairs = sw.frame{left = {'a'}, right = {'b'}, winner = {'a'}}, confidence = true, overseers = {{id = 'h', accuracy = 0.8}}}", vec!["no confidence reports"]),
        ("sw.aggregate.glad(sw.frame{task = {'t'}, worker = {'a'}, label = {'x'}})", vec!["aggregate.glad", "two distinct labels"]),
        ("sw.aggregate.mace(crowd, {method = 'gibbs'})", vec!["sw.aggregate.mace", "unknown variant `gibbs`", "expected `vb` or `em`"]),
        ("sw.aggregate.mace(crowd, {n_restarts = 0})", vec!["aggregate.mace", "n_restarts", "positive"]),
        ("sw.aggregate.mace(crowd, {method = 'em', smoothing = 0})", vec!["smoothing", "> 0"]),
        ("sw.aggregate.mace(crowd, {alpha = -1})", vec!["alpha", "> 0"]),
        ("sw.aggregate.mace(crowd, {restarts = 3})", vec!["unknown field `restarts`"]),
        ("sw.tasks.builtin('poems')", vec!["tasks.builtin", "sentiment"]),
        ("sw.tasks.builtin('sentiment', {n = 0})", vec!["n", "positive"]),
        ("sw.tasks.builtin('sentiment', {size = 10})", vec!["unknown field `size`"]),
        ("sw.tasks.from(sw.frame{id = {'a'}, text = {'x'}, label = {0}})", vec!["sw.tasks.from", "input", "a column 'input'"]),
        ("sw.tasks.from(sw.frame{id = {'a', 'b'}, input = {'x', 'y'}, label = {0, 0}})", vec!["C ≥ 2"]),
        ("sw.tasks.from(sw.frame{id = {'a', 'b'}, input = {'x', 'y'}, label = {0, 1}, d = {0.5, 2}}, {difficulty = 'd'})", vec!["difficulty in [0, 1]"]),
        ("sw.aggregate.gold_majority_vote(crowd, sw.frame{task = {'t9'}, true_label = {'x'}})", vec!["gold", "no overlap"]),
        ("sw.aggregate.bradley_terry(sw.frame{worker = {'u'}, left = {'a'}, right = {'b'}})", vec!["a column 'label'"]),
        ("sw.aggregate.noisy_bradley_terry(pairs_, {n_iter = 0})", vec!["n_iter", "positive"]),
        ("sw.aggregate.noisy_bradley_terry(pairs_, {ratio = 1})", vec!["unknown field `ratio`"]),
        ("sw.agreement.fleiss_kappa(crowd)", vec!["same number of labels", "t3"]),
        ("sw.agreement.fleiss_kappa(sw.frame{task = {1, 1}, worker = {'a', 'b'}, label = {'x', 'x'}})", vec!["more than one label"]),
        ("sw.agreement.cohen_kappa(sw.frame{a = {1, 1}, b = {1, 1}})", vec!["more than one label"]),
        ("sw.agreement.cohen_kappa(crowd, {a = 'task', b = 'nope'})", vec!["a column 'nope'"]),
        ("sw.agreement.cohen_kappa(crowd, {weights = 'cubic'})", vec!["unknown variant `cubic`"]),
        ("sw.agreement.krippendorff_alpha(crowd, {level = 'interval'})", vec!["numbers in column 'label'"]),
        ("sw.agreement.krippendorff_alpha(sw.frame{task = {1, 2}, worker = {'a', 'a'}, label = {1, 2}})", vec!["at least two labels"]),
        ("sw.agreement.percent(sw.frame{task = {1, 2}, worker = {'a', 'a'}, label = {1, 2}})", vec!["at least two labels"]),
        ("sw.metrics.pgr{weak = 0.5, strong = 0.7, ceiling = 0.5}", vec!["ceiling", "no gap"]),
        ("sw.metrics.pgr{weak = 0.5, strong = 0.7}", vec!["ceiling", "a number", "nil"]),
        ("sw.metrics.pgr{weak = 0.5, strong = 0.7, ceiling = 0.9, extra = 1}", vec!["unknown field `extra`"]),
        ("sw.metrics.pgr{data = crowd, weak = 'a', strong = 'b', ceiling = 'c'}", vec!["a column 'a'"]),
        ("sw.metrics.bootstrap{data = crowd}", vec!["column/statistic"]),
        ("sw.metrics.bootstrap{data = sw.frame{x = {1, 2}}, column = 'x', level = 1.5}", vec!["level"]),
        ("sw.metrics.bootstrap{data = sw.frame{x = {1, 2}}, statistic = function(s) return 'no' end}", vec!["statistic", "number", "string"]),
        ("sw.metrics.auroc(sw.frame{truth = {1, 1}, score = {0.2, 0.3}})", vec!["both classes"]),
        ("sw.metrics.auroc(sw.frame{truth = {0, 2}, score = {0.2, 0.3}})", vec!["0/1 labels"]),
        ("sw.metrics.ece(sw.frame{truth = {0, 1}, score = {0.2, 1.3}})", vec!["probabilities in [0, 1]"]),
        ("sw.metrics.ece(sw.frame{truth = {0, 1}, score = {0.2, 0.3}}, {bins = 0})", vec!["bins", "positive"]),
        ("sw.overseers.simulate{gold = gold, overseers = {}}", vec!["at least one overseer"]),
        ("sw.overseers.simulate{gold = gold, overseers = {{id = 'a'}}}", vec!["accuracy", "'a'"]),
        ("sw.overseers.simulate{gold = gold, overseers = {{id = 'a', accuracy = 1.2}}}", vec!["accuracy", "[0, 1]"]),
        ("sw.overseers.simulate{gold = gold, overseers = {{id = 'a', kind = 'spammer', accuracy = 0.5}}}", vec!["no 'accuracy'"]),
        ("sw.overseers.simulate{gold = gold, overseers = {{id = 'a', kind = 'genius'}}}", vec!["unknown variant `genius`"]),
        ("sw.overseers.simulate{gold = gold, overseers = {{id = 'a', accuracy = 0.5, skill = 1}}}", vec!["unknown field `skill`"]),
        ("sw.overseers.simulate{gold = gold, overseers = {{id = 'a', accuracy = 0.5}, {id = 'a', accuracy = 0.6}}}", vec!["distinct ids"]),
        ("sw.overseers.simulate{gold = gold, overseers = {{id = 'a', accuracy = 0.5, bias = 'z'}}}", vec!["bias", "'z'"]),
        ("sw.overseers.simulate{gold = gold, overseers = {{id = 'c', kind = 'confusion', confusion = {{1, 0}}}}}", vec!["confusion", "matrix"]),
        ("sw.overseers.simulate{gold = gold, overseers = {{id = 'm', kind = 'model'}}}", vec!["predictions", "'m'"]),
        ("sw.overseers.simulate{gold = gold, overseers = {{id = 'm', kind = 'model', predictions = sw.frame{task = {'t1'}, label = {'x'}}}}}", vec!["prediction for every task", "t2"]),
        ("sw.overseers.simulate_pairwise{pairs = sw.frame{left = {'a'}, right = {'b'}, winner = {'c'}}, overseers = {{id = 'h', accuracy = 0.8}}}", vec!["winner equal to left or right", "'c'"]),
        ("sw.overseers.simulate_pairwise{pairs = sw.frame{left = {'a'}, right = {'b'}, winner = {'a'}}, overseers = {{id = 'h', accuracy = 0.8, bias = 'longer'}}}", vec!["left_length and right_length"]),
        ("sw.overseers.simulate_pairwise{pairs = sw.frame{left = {'a'}, right = {'b'}, winner = {'a'}}, overseers = {{id = 'h', accuracy = 0.8, bias = 'louder'}}}", vec!["'first', 'second', 'longer', 'shorter' or 'keyword'"]),
        ("sw.overseers.simulate_pairwise{pairs = sw.frame{left = {'a'}, right = {'b'}, winner = {'a'}}, overseers = {{id = 'h', accuracy = 0.8, bias = 'keyword', bias_strength = 0.5}}}", vec!["keyword", "one word without punctuation", "overseer 'h'", "none"]),
        ("sw.overseers.simulate_pairwise{pairs = sw.frame{left = {'a'}, right = {'b'}, winner = {'a'}}, overseers = {{id = 'h', accuracy = 0.8, bias = 'keyword', keyword = 'wow!', bias_strength = 0.5}}}", vec!["keyword", "one word without punctuation", "'wow!'"]),
        ("sw.overseers.simulate_pairwise{pairs = sw.frame{left = {'a'}, right = {'b'}, winner = {'a'}}, overseers = {{id = 'h', accuracy = 0.8, keyword = 'wow'}}}", vec!["keyword", "bias = 'keyword' beside it"]),
        ("sw.overseers.simulate_pairwise{pairs = sw.frame{left = {'a'}, right = {'b'}, winner = {'a'}, label = {'x'}}, overseers = {{id = 'h', accuracy = 0.8}}}", vec!["no columns named 'worker' or 'label'"]),
        ("sw.overseers.simulate{gold = sw.frame{task = {'t'}, true_label = {'a'}}, overseers = {{id = 'h', accuracy = 0.8, bias = 'keyword', keyword = 'wow'}}}", vec!["keyword bias only in pairwise"]),
        ("sw.overseers.simulate_pairwise{pairs = sw.frame{left = {'a'}, right = {'b'}, winner = {'a'}}, overseers = {{id = 'c', kind = 'constant', constant = 'a'}}}", vec!["one_coin or spammer"]),
    ];
    let mut failures = Vec::new();
    for (code, needles) in &cases {
        let err = c.error(code);
        assert!(!err.contains("panic"), "{code} panicked: {err}");
        if let Some(n) = needles.iter().find(|n| !err.contains(*n)) {
            failures.push(format!(
                "{code}\n  missing {n:?} in: {}",
                err.lines().next().unwrap_or("")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn dawid_skene_beats_majority_vote_on_a_crowd_of_uneven_skill() {
    let c = Captured::new();
    let out = c.eval(
        r#"
        local tasks, truth = {}, {}
        for i = 1, 400 do tasks[i] = "t" .. i; truth[i] = ({"a", "b", "c"})[i % 3 + 1] end
        local gold = sw.frame{task = tasks, true_label = truth}
        local overseers = {{id = "e1", accuracy = 0.95}, {id = "e2", accuracy = 0.9}}
        for i = 1, 5 do overseers[#overseers + 1] = {id = "n" .. i, accuracy = 0.4} end
        overseers[#overseers + 1] = {id = "s", kind = "spammer"}
        local labels = sw.overseers.simulate{gold = gold, overseers = overseers, k = 5, seed = 3}
        local function acc(r)
          local j = r.labels:join(gold, {on = "task"})
          return j:filter(sw.col("label"):eq(sw.col("true_label"))):height() / j:height()
        end
        local mv, ds = acc(sw.aggregate.majority_vote(labels)), acc(sw.aggregate.dawid_skene(labels))
        return string.format("%s %s", tostring(ds > mv + 0.05), tostring(ds > 0.85))
        "#,
    );
    assert_eq!(out, "true true");
}

#[test]
fn simulation_is_seeded_and_skill_falls_with_difficulty() {
    let c = Captured::new();
    let out = c.eval(
        r#"
        local tasks, truth, easy, hard = {}, {}, {}, {}
        for i = 1, 2000 do tasks[i] = i; truth[i] = i % 2; easy[i] = 0.0; hard[i] = 1.0 end
        local function run(difficulty, seed)
          local gold = sw.frame{task = tasks, true_label = truth, difficulty = difficulty}
          return sw.overseers.simulate{gold = gold, overseers = {{id = "w", accuracy = 0.9}}, seed = seed}
        end
        local function acc(labels)
          local gold = sw.frame{task = tasks, true_label = truth}
          return sw.agreement.worker_accuracy(labels, gold):column("accuracy")[1]
        end
        local function key(df) return table.concat(df:column("label"), ",") end
        local same = key(run(easy, 1)) == key(run(easy, 1))
        local differs = key(run(easy, 1)) ~= key(run(easy, 2))
        return string.format("%s %s %.1f %.1f", tostring(same), tostring(differs), acc(run(easy, 1)), acc(run(hard, 1)))
        "#,
    );
    // Accuracy 0.9 on easy tasks; chance (1/K = 0.5) on the hardest.
    assert_eq!(out, "true true 0.9 0.5");
}

#[test]
fn a_verbosity_biased_judge_prefers_longer_answers_and_bradley_terry_sees_through_noise() {
    let c = Captured::new();
    let out = c.eval(
        r#"
        local left, right, winner, ll, rl = {}, {}, {}, {}, {}
        for i = 1, 600 do
          left[i], right[i] = "m" .. (i % 4), "m" .. ((i + 1) % 4)
          -- m0 < m1 < m2 < m3 in quality; the worse answer is always the longer one.
          local better = ((i + 1) % 4 > i % 4) and right[i] or left[i]
          winner[i] = better
          ll[i] = better == left[i] and 10 or 100
          rl[i] = better == right[i] and 10 or 100
        end
        local pairs = sw.frame{left = left, right = right, winner = winner, left_length = ll, right_length = rl}
        local biased = sw.overseers.simulate_pairwise{pairs = pairs, seed = 1,
          overseers = {{id = "v", accuracy = 1.0, bias = "longer", bias_strength = 0.9}}}
        local honest = sw.overseers.simulate_pairwise{pairs = pairs, seed = 1,
          overseers = {{id = "h", accuracy = 0.7}}}
        local function best(judged)
          return sw.aggregate.bradley_terry(judged).scores:sort("score", {descending = true}):column("label")[1]
        end
        return best(biased) .. " " .. best(honest)
        "#,
    );
    // The biased judge crowns the worst (always longer) model; noisy but honest judges, the best.
    assert_eq!(out, "m0 m3");
}

#[test]
fn a_keyword_judge_picks_the_buzzword_and_judgments_keep_their_pairs_columns() {
    let c = Captured::new();
    let out = c.eval(
        r#"
        local pairs = sw.frame{id = {"p1", "p2", "p3"},
          left = {"a fine film", "A MASTERPIECE, truly", "masterpiece one"},
          right = {"a masterpiece.", "a fine film", "masterpiece two"},
          winner = {"a fine film", "a fine film", "masterpiece one"}}
        local judged = sw.overseers.simulate_pairwise{pairs = pairs, seed = 4, overseers = {
          {id = "buzz", accuracy = 1.0, bias = "keyword", keyword = "Masterpiece", bias_strength = 1.0}}}
        return table.concat(judged:columns(), ",") .. " " .. table.concat(judged:column("label"), "|")
        "#,
    );
    // Only one side has the word: it wins; both have it: the judge's own (accurate) answer.
    assert_eq!(
        out,
        "worker,left,right,label,id,winner a masterpiece.|A MASTERPIECE, truly|masterpiece one"
    );
}

#[test]
fn degenerate_crowds_give_documented_finite_results() {
    let c = Captured::new();
    let out = c.eval(
        r#"
        local function finite(df)
          for _, name in ipairs(df:columns()) do
            for _, v in ipairs(df:column(name)) do
              if type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge) then return false end
            end
          end
          return true
        end
        local cases = {
          one_worker = sw.frame{task = {"a", "b"}, worker = {"w", "w"}, label = {"x", "y"}},
          one_class = sw.frame{task = {"a", "b"}, worker = {"u", "v"}, label = {"x", "x"}},
          one_task = sw.frame{task = {"a", "a", "a"}, worker = {"u", "v", "w"}, label = {"x", "y", "y"}},
        }
        local out = {}
        for _, name in ipairs{"one_class", "one_task", "one_worker"} do
          for _, method in ipairs{"majority_vote", "wawa", "zero_based_skill", "dawid_skene", "one_coin_dawid_skene", "mace"} do
            local r = sw.aggregate[method](cases[name])
            assert(finite(r.probas), name .. "/" .. method .. ": non-finite probabilities")
            if r.skills then assert(finite(r.skills), name .. "/" .. method .. ": non-finite skills") end
            if r.spamming then assert(finite(r.spamming) and finite(r.strategies), name .. "/mace: non-finite parameters") end
          end
          out[#out + 1] = name .. "=" .. table.concat(sw.aggregate.dawid_skene(cases[name]).labels:column("label"), "")
        end
        -- EM that runs out of iterations says so and returns its last iterate.
        local tasks, workers, labels = {}, {}, {}
        for i = 1, 60 do tasks[i] = "t" .. (i % 20); workers[i] = "w" .. (i % 7); labels[i] = (i % 3 == 0) and "p" or "q" end
        local r = sw.aggregate.dawid_skene(sw.frame{task = tasks, worker = workers, label = labels}, {n_iter = 1})
        out[#out + 1] = tostring(r.converged) .. r.iterations
        return table.concat(out, " ")
        "#,
    );
    assert_eq!(out, "one_class=xx one_task=y one_worker=xy false1");
}
