//! Markdown in descriptions, details and test strategies, made safe to show.
//!
//! The text is parsed (pulldown-cmark, CommonMark with strikethrough and task
//! lists) into a small tree of blocks and inlines that the app turns into
//! DOM nodes one by one. Nothing is ever handed to the browser as HTML:
//! HTML in the text becomes plain text, links keep only `http`, `https`
//! and `mailto` addresses, and images become links to them. So a `<script>`
//! in a task is shown, not run.
//!
//! The notes Task Master's agents append (`<info added on <time>>` …
//! `</info added on <time>>`) become [`Block::Note`]s, which the app shows
//! collapsed under their time.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// A block of rendered text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Paragraph(Vec<Inline>),
    /// `level` 1 to 6.
    Heading {
        level: u8,
        content: Vec<Inline>,
    },
    /// `start`: the first number of an ordered list; `None` for bullets.
    List {
        start: Option<u64>,
        items: Vec<Vec<Block>>,
    },
    Code {
        language: String,
        text: String,
    },
    Quote(Vec<Block>),
    Rule,
    /// A note an agent appended, with the time it gives.
    Note {
        added: String,
        blocks: Vec<Block>,
    },
}

/// Text within a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    Text(String),
    Code(String),
    Emphasis(Vec<Inline>),
    Strong(Vec<Inline>),
    Strikethrough(Vec<Inline>),
    /// `href` is `http:`, `https:` or `mailto:`; a link to anything else is
    /// its text alone.
    Link {
        href: String,
        content: Vec<Inline>,
    },
    /// A line break the author asked for.
    Break,
    /// A task-list box, ticked or not.
    Check(bool),
}

/// A note's time, `2025-05-25T10:24:59.806Z`, as `2025-05-25 10:24 UTC`;
/// anything else as it is.
pub fn readable_time(added: &str) -> String {
    match (added.get(..10), added.get(11..16)) {
        (Some(date), Some(time)) if added.get(10..11) == Some("T") => format!("{date} {time} UTC"),
        _ => added.to_owned(),
    }
}

const NOTE_OPEN: &str = "<info added on ";
const NOTE_CLOSE: &str = "</info added on ";

/// `text` as blocks, notes apart.
pub fn render(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some((before, added, inside, after)) = next_note(rest) {
        blocks.extend(parse(before));
        blocks.push(Block::Note {
            added: added.to_owned(),
            blocks: parse(inside),
        });
        rest = after;
    }
    blocks.extend(parse(rest));
    blocks
}

/// The first complete note in `text`: what comes before it, its time, its
/// text, and what follows. A note that is opened but never closed is left
/// as text.
fn next_note(text: &str) -> Option<(&str, &str, &str, &str)> {
    let mut from = 0;
    while let Some(found) = text[from..].find(NOTE_OPEN) {
        let open = from + found;
        // At the start of a line only.
        if open == 0 || text[..open].ends_with('\n') {
            let after_open = &text[open + NOTE_OPEN.len()..];
            if let Some(end) = after_open
                .find('>')
                .filter(|end| !after_open[..*end].contains('\n'))
            {
                let added = &after_open[..end];
                let body = &after_open[end + 1..];
                let close = format!("{NOTE_CLOSE}{added}>");
                if let Some(stop) = body.find(&close) {
                    return Some((
                        &text[..open],
                        added,
                        &body[..stop],
                        &body[stop + close.len()..],
                    ));
                }
            }
        }
        from = open + NOTE_OPEN.len();
    }
    None
}

/// Whether a link may be followed from the app.
fn safe_href(href: &str) -> bool {
    let lower = href.trim_start().to_ascii_lowercase();
    ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// What is being built while events arrive.
enum Open {
    Blocks(Vec<Block>),
    Inlines(Vec<Inline>),
}

struct Frame {
    tag: Tag<'static>,
    content: Open,
    /// A list's items so far.
    items: Vec<Vec<Block>>,
}

fn parse(text: &str) -> Vec<Block> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Vec<Block> = Vec::new();
    let mut code: Option<(String, String)> = None;

    for event in Parser::new_ext(text, options) {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let language = match kind {
                    CodeBlockKind::Fenced(info) => {
                        info.split_whitespace().next().unwrap_or("").to_owned()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((language, String::new()));
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((language, text)) = code.take() {
                    push_block(&mut stack, &mut root, Block::Code { language, text });
                }
            }
            Event::Text(text) if code.is_some() => {
                if let Some((_, body)) = code.as_mut() {
                    body.push_str(&text);
                }
            }
            Event::Start(tag) => {
                let content = match tag {
                    Tag::Paragraph
                    | Tag::Heading { .. }
                    | Tag::Emphasis
                    | Tag::Strong
                    | Tag::Strikethrough
                    | Tag::Link { .. }
                    | Tag::Image { .. }
                    | Tag::TableCell => Open::Inlines(Vec::new()),
                    _ => Open::Blocks(Vec::new()),
                };
                stack.push(Frame {
                    tag: tag.into_static(),
                    content,
                    items: Vec::new(),
                });
            }
            Event::End(_) => {
                let Some(frame) = stack.pop() else { continue };
                close(frame, &mut stack, &mut root);
            }
            Event::Text(text) | Event::Html(text) | Event::InlineHtml(text) => {
                push_inline(&mut stack, &mut root, Inline::Text(text.into_string()));
            }
            Event::Code(text) => {
                push_inline(&mut stack, &mut root, Inline::Code(text.into_string()))
            }
            Event::SoftBreak => push_inline(&mut stack, &mut root, Inline::Text(" ".into())),
            Event::HardBreak => push_inline(&mut stack, &mut root, Inline::Break),
            Event::Rule => push_block(&mut stack, &mut root, Block::Rule),
            Event::TaskListMarker(done) => push_inline(&mut stack, &mut root, Inline::Check(done)),
            Event::FootnoteReference(label) => {
                push_inline(&mut stack, &mut root, Inline::Text(format!("[^{label}]")));
            }
            Event::InlineMath(text) | Event::DisplayMath(text) => {
                push_inline(&mut stack, &mut root, Inline::Code(text.into_string()));
            }
        }
    }
    // Whatever was left open (the parser closes everything; defensive).
    while let Some(frame) = stack.pop() {
        close(frame, &mut stack, &mut root);
    }
    root
}

/// Ends `frame`, adding what it made to its parent.
fn close(frame: Frame, stack: &mut [Frame], root: &mut Vec<Block>) {
    let inlines = |content: Open| match content {
        Open::Inlines(inlines) => inlines,
        Open::Blocks(blocks) => flatten(blocks),
    };
    let blocks = |content: Open| match content {
        Open::Blocks(blocks) => blocks,
        Open::Inlines(inlines) => vec![Block::Paragraph(inlines)],
    };
    let is_image = matches!(frame.tag, Tag::Image { .. });
    match frame.tag {
        Tag::Paragraph | Tag::TableCell => {
            push_block(stack, root, Block::Paragraph(inlines(frame.content)));
        }
        Tag::Heading { level, .. } => {
            let level = match level {
                HeadingLevel::H1 => 1,
                HeadingLevel::H2 => 2,
                HeadingLevel::H3 => 3,
                HeadingLevel::H4 => 4,
                HeadingLevel::H5 => 5,
                HeadingLevel::H6 => 6,
            };
            push_block(
                stack,
                root,
                Block::Heading {
                    level,
                    content: inlines(frame.content),
                },
            );
        }
        Tag::Emphasis => push_inline(stack, root, Inline::Emphasis(inlines(frame.content))),
        Tag::Strong => push_inline(stack, root, Inline::Strong(inlines(frame.content))),
        Tag::Strikethrough => {
            push_inline(stack, root, Inline::Strikethrough(inlines(frame.content)));
        }
        Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
            let content = inlines(frame.content);
            let content = if is_image && content.is_empty() {
                vec![Inline::Text(dest_url.to_string())]
            } else {
                content
            };
            if safe_href(&dest_url) {
                push_inline(
                    stack,
                    root,
                    Inline::Link {
                        href: dest_url.trim().to_owned(),
                        content,
                    },
                );
            } else {
                for inline in content {
                    push_inline(stack, root, inline);
                }
            }
        }
        Tag::BlockQuote(_) => push_block(stack, root, Block::Quote(blocks(frame.content))),
        Tag::List(start) => push_block(
            stack,
            root,
            Block::List {
                start,
                items: frame.items,
            },
        ),
        Tag::Item => {
            let item = blocks(frame.content);
            match stack.last_mut() {
                Some(list) => list.items.push(item),
                None => root.extend(item),
            }
        }
        // Tables, footnotes, definition lists, HTML blocks, metadata: their
        // contents as plain blocks.
        _ => {
            for block in blocks(frame.content) {
                push_block(stack, root, block);
            }
        }
    }
}

/// Blocks flattened to inlines (a block where only text fits).
fn flatten(blocks: Vec<Block>) -> Vec<Inline> {
    let mut inlines = Vec::new();
    for block in blocks {
        match block {
            Block::Paragraph(content) | Block::Heading { content, .. } => inlines.extend(content),
            Block::Code { text, .. } => inlines.push(Inline::Code(text)),
            Block::Quote(blocks) | Block::Note { blocks, .. } => inlines.extend(flatten(blocks)),
            Block::List { items, .. } => {
                for item in items {
                    inlines.extend(flatten(item));
                }
            }
            Block::Rule => {}
        }
    }
    inlines
}

fn push_block(stack: &mut [Frame], root: &mut Vec<Block>, block: Block) {
    match stack.last_mut() {
        Some(Frame {
            content: Open::Blocks(blocks),
            ..
        }) => blocks.push(block),
        Some(Frame {
            content: Open::Inlines(inlines),
            ..
        }) => inlines.extend(flatten(vec![block])),
        None => root.push(block),
    }
}

fn push_inline(stack: &mut [Frame], root: &mut Vec<Block>, inline: Inline) {
    match stack.last_mut() {
        Some(Frame {
            content: Open::Inlines(inlines),
            ..
        }) => inlines.push(inline),
        // Loose text in a list item or a quote: a paragraph of its own,
        // joined to the one before when that is one.
        Some(Frame {
            content: Open::Blocks(blocks),
            ..
        }) => match blocks.last_mut() {
            Some(Block::Paragraph(inlines)) => inlines.push(inline),
            _ => blocks.push(Block::Paragraph(vec![inline])),
        },
        None => match root.last_mut() {
            Some(Block::Paragraph(inlines)) => inlines.push(inline),
            _ => root.push(Block::Paragraph(vec![inline])),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> Inline {
        Inline::Text(value.to_owned())
    }

    #[test]
    fn a_notes_time_reads_as_date_hour_and_zone() {
        assert_eq!(
            readable_time("2025-05-25T10:24:59.806Z"),
            "2025-05-25 10:24 UTC"
        );
        assert_eq!(readable_time("yesterday"), "yesterday");
    }

    #[test]
    fn the_usual_markdown_becomes_blocks_and_inlines() {
        let blocks = render(
            "# Plan\n\nUse **Redis** for *hot* reads, `GET` only.\n\n1. cache\n2. ~~guess~~ measure\n\n- [x] done\n- [ ] next\n\n```rust\nfn main() {}\n```\n\n> why\n\n---\n",
        );
        assert_eq!(
            blocks,
            [
                Block::Heading {
                    level: 1,
                    content: vec![text("Plan")]
                },
                Block::Paragraph(vec![
                    text("Use "),
                    Inline::Strong(vec![text("Redis")]),
                    text(" for "),
                    Inline::Emphasis(vec![text("hot")]),
                    text(" reads, "),
                    Inline::Code("GET".into()),
                    text(" only."),
                ]),
                Block::List {
                    start: Some(1),
                    items: vec![
                        vec![Block::Paragraph(vec![text("cache")])],
                        vec![Block::Paragraph(vec![
                            Inline::Strikethrough(vec![text("guess")]),
                            text(" measure"),
                        ])],
                    ],
                },
                Block::List {
                    start: None,
                    items: vec![
                        vec![Block::Paragraph(vec![Inline::Check(true), text("done")])],
                        vec![Block::Paragraph(vec![Inline::Check(false), text("next")])],
                    ],
                },
                Block::Code {
                    language: "rust".into(),
                    text: "fn main() {}\n".into()
                },
                Block::Quote(vec![Block::Paragraph(vec![text("why")])]),
                Block::Rule,
            ]
        );
    }

    #[test]
    fn html_is_shown_as_text_and_never_as_markup() {
        let blocks = render(
            "Hi <script>alert(1)</script> there\n\n<img src=x onerror=alert(1)>\n\n<div onclick=\"x()\">block</div>\n",
        );
        let all = format!("{blocks:?}");
        assert!(all.contains("<script>"), "{all}");
        assert!(all.contains("<img src=x onerror=alert(1)>"), "{all}");
        fn only_text(blocks: &[Block]) -> bool {
            blocks.iter().all(|block| match block {
                Block::Paragraph(inlines) => inlines.iter().all(|i| matches!(i, Inline::Text(_))),
                _ => false,
            })
        }
        assert!(only_text(&blocks), "{blocks:?}");
    }

    #[test]
    fn only_web_and_mail_links_are_links() {
        let blocks = render(
            "[docs](https://example.com/a) [mail](mailto:a@example.com) [bad](javascript:alert(1)) [data](data:text/html,x) ![pixel](https://example.com/p.png)",
        );
        let Block::Paragraph(inlines) = &blocks[0] else {
            panic!("{blocks:?}")
        };
        let links: Vec<&str> = inlines
            .iter()
            .filter_map(|inline| match inline {
                Inline::Link { href, .. } => Some(href.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            links,
            [
                "https://example.com/a",
                "mailto:a@example.com",
                "https://example.com/p.png"
            ]
        );
        assert!(
            inlines.contains(&text("bad")),
            "the text stays: {inlines:?}"
        );
    }

    #[test]
    fn notes_agents_appended_become_notes() {
        let details = "Plan first.\n<info added on 2025-05-25T10:24:59.806Z>\n# Done\n\nAll **green**.\n</info added on 2025-05-25T10:24:59.806Z>\n<info added on 2025-05-26T08:00:00.000Z>\nMore.\n</info added on 2025-05-26T08:00:00.000Z>\nAfter.\n<info added on 2025-05-27T00:00:00.000Z>\nnever closed\n";
        let blocks = render(details);
        assert_eq!(blocks[0], Block::Paragraph(vec![text("Plan first.")]));
        assert_eq!(
            blocks[1],
            Block::Note {
                added: "2025-05-25T10:24:59.806Z".into(),
                blocks: vec![
                    Block::Heading {
                        level: 1,
                        content: vec![text("Done")]
                    },
                    Block::Paragraph(vec![
                        text("All "),
                        Inline::Strong(vec![text("green")]),
                        text(".")
                    ]),
                ]
            }
        );
        assert!(
            matches!(&blocks[2], Block::Note { added, .. } if added == "2025-05-26T08:00:00.000Z")
        );
        assert_eq!(blocks.len(), 4, "{blocks:?}");
        let tail = format!("{:?}", blocks[3]);
        assert!(
            tail.contains("After.") && tail.contains("never closed"),
            "an unclosed note stays text: {tail}"
        );
    }

    #[test]
    fn the_shared_sample_renders_its_notes() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/taskmaster-samples/task_015_done_with_notes.txt"
        );
        let Ok(sample) = std::fs::read_to_string(path) else {
            panic!("{path} is missing: the contract's samples sit beside the repository");
        };
        let notes = render(&sample)
            .iter()
            .filter(|block| matches!(block, Block::Note { .. }))
            .count();
        let opened = sample
            .lines()
            .filter(|line| line.starts_with("<info added on "))
            .count();
        assert!(opened > 0);
        assert_eq!(notes, opened, "every note the agents appended");
    }

    #[test]
    fn nothing_in_it_panics() {
        for text in [
            "",
            " ",
            "*",
            "**",
            "[",
            "[a](",
            "```",
            "> > >",
            "1.",
            "- [",
            "<info added on ",
            "<info added on x>\n</info added on y>",
            "\u{0}",
            "|a|b|\n|-|-|\n|1|2|",
            "[^1]\n\n[^1]: note",
        ] {
            let _ = render(text);
        }
    }
}
