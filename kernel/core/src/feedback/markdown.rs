//! The Markdown subset instructions are written in, rendered to HTML with everything escaped
//! first: `#`–`###` headings, paragraphs, `-`/`*` lists, `**bold**`, `*italic*` and `` `code` ``.
//! No links, images or raw HTML: instructions are shown to raters as text, never as markup
//! someone else wrote.

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Bold, italic and code spans of one line (escaped here). Backticks split the line first:
/// nothing inside a code span is emphasis, and no tag crosses a code span.
fn inline(line: &str) -> String {
    let parts: Vec<&str> = line.split('`').collect();
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        let text = escape_html(part);
        // Odd segments are inside backticks, if the closing one exists.
        if i % 2 == 1 && i + 1 < parts.len() {
            out.push_str(&format!("<code>{text}</code>"));
        } else if i % 2 == 1 {
            out.push('`');
            out.push_str(&emphasis(&text));
        } else {
            out.push_str(&emphasis(&text));
        }
    }
    out
}

/// `**bold**` and `*italic*` in escaped text.
fn emphasis(text: &str) -> String {
    let mut rest = text.to_string();
    for (mark, tag) in [("**", "strong"), ("*", "em")] {
        let mut done = String::new();
        while let Some(a) = rest.find(mark) {
            let Some(len) = rest[a + mark.len()..].find(mark) else {
                break;
            };
            if len == 0 {
                break;
            }
            let inner = &rest[a + mark.len()..a + mark.len() + len];
            done.push_str(&rest[..a]);
            done.push_str(&format!("<{tag}>{inner}</{tag}>"));
            rest = rest[a + 2 * mark.len() + len..].to_string();
        }
        done.push_str(&rest);
        rest = done;
    }
    rest
}

/// Renders the subset to HTML.
pub fn markdown_to_html(md: &str) -> String {
    let mut html = String::new();
    let mut para: Vec<String> = Vec::new();
    let mut list = false;
    let flush = |html: &mut String, para: &mut Vec<String>| {
        if !para.is_empty() {
            html.push_str(&format!("<p>{}</p>\n", para.join(" ")));
            para.clear();
        }
    };
    for line in md.lines() {
        let t = line.trim();
        let item = t.strip_prefix("- ").or_else(|| t.strip_prefix("* "));
        if item.is_none() && list {
            html.push_str("</ul>\n");
            list = false;
        }
        if t.is_empty() {
            flush(&mut html, &mut para);
        } else if let Some(item) = item {
            flush(&mut html, &mut para);
            if !list {
                html.push_str("<ul>\n");
                list = true;
            }
            html.push_str(&format!("<li>{}</li>\n", inline(item)));
        } else if let Some((level, text)) = heading(t) {
            flush(&mut html, &mut para);
            html.push_str(&format!("<h{level}>{}</h{level}>\n", inline(text)));
        } else {
            para.push(inline(t));
        }
    }
    flush(&mut html, &mut para);
    if list {
        html.push_str("</ul>\n");
    }
    html
}

fn heading(t: &str) -> Option<(usize, &str)> {
    let level = t.chars().take_while(|&c| c == '#').count();
    ((1..=3).contains(&level) && t[level..].starts_with(' '))
        .then(|| (level + 1, t[level..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_subset_and_escapes_everything_else() {
        let html = markdown_to_html("# Task\nRead **each** item, *then* press `1`.\n\n- one\n- two\n\n<script>alert(1)</script> [x](javascript:y)");
        assert!(html.contains("<h2>Task</h2>"), "{html}");
        assert!(
            html.contains("<strong>each</strong>")
                && html.contains("<em>then</em>")
                && html.contains("<code>1</code>")
        );
        assert!(html.contains("<ul>\n<li>one</li>\n<li>two</li>\n</ul>"));
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains("<script")
        );
        assert!(!html.contains("<a "));
        // Emphasis never crosses or enters a code span.
        assert_eq!(
            markdown_to_html("`*`x`*`"),
            "<p><code>*</code>x<code>*</code></p>\n"
        );
        assert_eq!(
            markdown_to_html("a `b **c` d**"),
            "<p>a <code>b **c</code> d**</p>\n"
        );
    }
}
