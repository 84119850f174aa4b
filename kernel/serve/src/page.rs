//! The rater page: one HTML document per campaign (its name, its instructions rendered from the
//! Markdown subset, and its answer format as escaped JSON in a data attribute), plus the
//! script and style every campaign shares. All of it is compiled into the binary: a rater's
//! browser fetches nothing from anywhere else. Item and model text reach the page only through
//! the JSON API and are put in with `textContent`, never as markup.

use sandwich_core::feedback::{escape_html, markdown_to_html, Campaign};
use serde_json::json;

pub(crate) const APP_JS: &str = include_str!("../assets/app.js");
pub(crate) const APP_CSS: &str = include_str!("../assets/app.css");

pub(crate) fn render(c: &Campaign) -> String {
    let s = c.spec();
    let config = json!({
        "kind": s.kind.name(),
        "choices": s.choices,
        "scale": s.scale,
        "candidates": s.candidates,
    });
    let name = escape_html(&s.name);
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name}</title>
<link rel="stylesheet" href="/assets/app.css">
</head>
<body>
<main id="app" data-config="{config}">
<header>
<h1>{name}</h1>
<div class="progress"><progress id="progress" max="1" value="0" aria-label="Progress"></progress> <span id="progress-text"></span></div>
</header>
<section class="instructions" aria-label="Instructions">
{instructions}</section>
<section id="item" hidden>
<dl id="fields"></dl>
<aside id="assistance" hidden><h2 id="assistance-heading"></h2><dl id="assistance-fields"></dl></aside>
<form id="answer" novalidate>
<fieldset><legend id="question">Your answer</legend><div id="controls"></div></fieldset>
<button type="submit" id="submit">Submit <kbd>Enter</kbd></button>
</form>
</section>
<p id="status" role="status" aria-live="polite"></p>
<section id="message" hidden></section>
</main>
<script src="/assets/app.js" defer></script>
</body>
</html>
"#,
        config = escape_html(&config.to_string()),
        instructions = markdown_to_html(&s.instructions),
    )
}
