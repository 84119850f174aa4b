//! Every page of `lua/docs/` runs: its Lua example is executed in a fresh session (working
//! directory `lua/docs/`, where `data/` holds the example files) and what it prints must equal
//! the page's `text` block. `BLESS=1 cargo test` rewrites the blocks after a deliberate change;
//! review the diff before committing it.

use std::path::{Path, PathBuf};

use crate::util::Captured;

fn docs_dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("docs")
}

struct Page {
    path: PathBuf,
    text: String,
    example: String,
    /// Byte range of the expected output inside `text`.
    expected: std::ops::Range<usize>,
}

fn block(text: &str, from: usize, lang: &str) -> Option<std::ops::Range<usize>> {
    let fence = format!("```{lang}\n");
    let start = text[from..].find(&fence)? + from + fence.len();
    let end = text[start..].find("```")? + start;
    Some(start..end)
}

fn pages() -> Vec<Page> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(docs_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md") && !p.ends_with("README.md"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let example = block(&text, 0, "lua")
                .unwrap_or_else(|| panic!("{}: no ```lua example", path.display()));
            let expected = block(&text, example.end, "text").unwrap_or_else(|| {
                panic!("{}: no ```text output after the example", path.display())
            });
            Page {
                example: text[example].to_string(),
                expected,
                text,
                path,
            }
        })
        .collect()
}

fn normalise(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim_end).collect();
    lines.join("\n").trim_end().to_string() + "\n"
}

#[test]
fn every_example_runs_and_prints_what_its_page_says() {
    std::env::set_current_dir(docs_dir()).unwrap();
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for page in pages() {
        let c = Captured::new();
        let name = page.path.file_name().unwrap().to_string_lossy().to_string();
        // Examples are scripts: a final `;` drops the value of their last expression, so only
        // what they print counts.
        let result = c.session.eval(&format!("{}\n;", page.example), &name);
        let mut actual = c.take();
        match result {
            Ok(Some(b)) => {
                actual.push_str(b.text());
                actual.push('\n');
            }
            Ok(None) => {}
            Err(e) => actual.push_str(&format!("error: {e}\n")),
        }
        let actual = normalise(&actual);
        if actual != normalise(&page.text[page.expected.clone()]) {
            if bless {
                let mut text = page.text.clone();
                text.replace_range(page.expected.clone(), &actual);
                std::fs::write(&page.path, text).unwrap();
            } else {
                failures.push(format!(
                    "{name}\n--- expected\n{}--- actual\n{actual}",
                    normalise(&page.text[page.expected.clone()])
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} pages differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The public functions: every key of `sw`, and every method of each userdata type.
fn public_functions() -> Vec<String> {
    let c = Captured::new();
    let listing = c.eval(
        r#"
        local names = {}
        for k, v in pairs(sw) do
          if type(v) == "table" then
            -- A namespace (sw.model, sw.train): its functions are the public ones.
            for k2 in pairs(v) do names[#names + 1] = "sw." .. k .. "." .. k2 end
          else
            names[#names + 1] = "sw." .. k
          end
        end
        local df = sw.frame{a = {1}}
        local samples = {
          DataFrame = df, LazyFrame = df:lazy(), Expr = sw.col("a"), ["Expr.str"] = sw.col("a").str,
          GroupBy = df:group_by("a"), When = sw.when(sw.col("a"):eq(1)),
          Model = sw.model.new{arch = "gpt2", vocab_size = 16, hidden_size = 8, heads = 2},
          Chart = sw.chart.line(df, {x = "a", y = "a"}),
        }
        for kind, value in pairs(samples) do
          for _, method in ipairs(sw._methods(value)) do names[#names + 1] = kind .. "." .. method end
        end
        table.sort(names)
        return table.concat(names, "\n")
        "#,
    );
    listing.lines().map(str::to_string).collect()
}

#[test]
fn every_public_function_has_a_page() {
    let pages: Vec<String> = pages()
        .iter()
        .map(|p| p.path.file_stem().unwrap().to_string_lossy().to_string())
        .collect();
    let shared = |name: &str| {
        // A verb shared by DataFrame and LazyFrame is documented once, on the DataFrame page,
        // which says so.
        let verb = name.strip_prefix("LazyFrame.")?;
        let page = std::fs::read_to_string(docs_dir().join(format!("DataFrame.{verb}.md"))).ok()?;
        page.contains("Also a LazyFrame method").then_some(())
    };
    let missing: Vec<String> = public_functions()
        .into_iter()
        .filter(|f| !f.starts_with("sw._"))
        .filter(|f| !pages.contains(f) && shared(f).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "functions without a page in lua/docs/: {missing:?}"
    );
}
