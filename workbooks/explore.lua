-- explore.lua: a first look at a crowd-labelling data set with the sandwich module.
--
-- 240 multiple-choice questions, each answered by 5 novices and 1 expert
-- (data/judgments.csv), with the hidden answers in data/gold.csv.
-- Run it with:  sandwich run workbooks/explore.lua [DATA_DIR]

local sw = require("sandwich")
local dir = arg[1] or (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/data"

local judgments = sw.read_csv(dir .. "/judgments.csv")
local gold = sw.read_csv(dir .. "/gold.csv")
print(("%d judgments of %d questions by %d workers"):format(
  judgments:height(), gold:height(), judgments:select(sw.col("worker"):n_unique()):column("worker")[1]))

-- Every judgment next to the hidden answer.
local scored = judgments
  :join(gold, {on = "task", how = "left"})
  :with_columns((sw.col("label"):eq(sw.col("true_label"))):cast("float64"):alias("correct"))

print("\nAccuracy of each overseer group:")
local by_group = scored
  :group_by("group")
  :agg{sw.col("correct"):mean():alias("accuracy"), sw.len():alias("judgments")}
  :sort("accuracy", {descending = true})
print(by_group)

print("\nThe five most and least accurate novices:")
local novices = scored
  :filter(sw.col("group"):eq("novice"))
  :group_by("worker")
  :agg{sw.col("correct"):mean():round(3):alias("accuracy"), sw.len():alias("n")}
  :sort({"accuracy", "worker"}, {descending = {true, false}})
print(novices:head(5))
print(novices:tail(5))

-- Majority vote of the five novices; ties go to the alphabetically first label.
local votes = scored
  :filter(sw.col("group"):eq("novice"))
  :group_by({"task", "label"})
  :agg{sw.len():alias("votes")}
  :sort({"task", "votes", "label"}, {descending = {false, true, false}})
  :unique{subset = "task", keep = "first"}
  :join(gold, {on = "task"})
local vote_accuracy = votes
  :select((sw.col("label"):eq(sw.col("true_label"))):cast("float64"):mean():alias("acc"))
  :column("acc")[1]

local function accuracy_of(group)
  return by_group:filter(sw.col("group"):eq(group)):column("accuracy")[1]
end
local novice, expert = accuracy_of("novice"), accuracy_of("expert")
print(("\nOne novice: %.3f   majority of 5 novices: %.3f   one expert: %.3f"):format(
  novice, vote_accuracy, expert))
print(("Share of the novice -> expert gap that voting recovers: %.2f"):format(
  (vote_accuracy - novice) / (expert - novice)))

print("\nNovice accuracy by question difficulty:")
print(scored
  :filter(sw.col("group"):eq("novice"))
  :with_columns(
    sw.when(sw.col("difficulty"):lt(1/3)):then_("easy")
      :when(sw.col("difficulty"):lt(2/3)):then_("medium")
      :otherwise("hard"):alias("difficulty_band"))
  :group_by("difficulty_band")
  :agg{sw.col("correct"):mean():round(3):alias("accuracy"), sw.col("task"):n_unique():alias("questions")}
  :sort("accuracy", {descending = true}))

-- The oversight toolkit does the aggregation properly: Dawid-Skene learns each novice's
-- confusions, and the PGR comes with a bootstrap interval over questions. (Its majority vote
-- breaks ties as crowd-kit does, towards the label given first, not alphabetically as above,
-- hence a slightly different figure.)
local novice_labels = judgments:filter(sw.col("group"):eq("novice"))
local function correct_of(result, name)
  return result.labels:join(gold, {on = "task"})
    :select("task", sw.col("label"):eq(sw.col("true_label")):cast("float64"):alias(name))
end
local ds = sw.aggregate.dawid_skene(novice_labels)
local per_question = correct_of(sw.aggregate.majority_vote(novice_labels), "vote")
  :join(correct_of(ds, "dawid_skene"), {on = "task"})
  :join(scored:filter(sw.col("group"):eq("novice")):group_by("task")
          :agg{sw.col("correct"):mean():alias("one_novice")}, {on = "task"})
  :join(scored:filter(sw.col("group"):eq("expert")):select("task", sw.col("correct"):alias("expert")), {on = "task"})
print(("\nNovice agreement: Krippendorff's alpha %.3f, Fleiss' kappa %.3f"):format(
  sw.agreement.krippendorff_alpha(novice_labels), sw.agreement.fleiss_kappa(novice_labels)))
for _, arm in ipairs{"vote", "dawid_skene"} do
  local r = sw.metrics.pgr{data = per_question, weak = "one_novice", strong = arm, ceiling = "expert",
                           n_boot = 1000, seed = 1}
  print(("Gap recovered by %-11s %.2f  (95%% CI %.2f to %.2f)"):format(arm .. ":", r.pgr, r.lower, r.upper))
end
