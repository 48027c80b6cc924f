//! Task texts shown as Markdown: the tree `taskmaster_board::markdown`
//! makes, turned into DOM nodes one by one. Text goes in as text nodes and
//! nothing goes in as HTML, so whatever a task says, it cannot run.

use leptos::prelude::*;
use taskmaster_board::markdown::{readable_time, render, Block, Inline};

/// `text` rendered, updated as it changes; nothing when it is empty.
#[component]
pub fn Markdown(#[prop(into)] text: Signal<String>, label: &'static str) -> impl IntoView {
    move || {
        let text = text.get();
        (!text.trim().is_empty()).then(|| {
            view! { <section class="markdown" aria-label=label>{blocks(render(&text))}</section> }
        })
    }
}

fn blocks(blocks: Vec<Block>) -> AnyView {
    blocks.into_iter().map(block).collect_view().into_any()
}

fn block(block: Block) -> AnyView {
    match block {
        Block::Paragraph(content) => view! { <p>{inlines(content)}</p> }.into_any(),
        // The page's own heading is the h1: a text's headings start at h2,
        // so the outline never skips a level.
        Block::Heading { level, content } => match level {
            1 => view! { <h2>{inlines(content)}</h2> }.into_any(),
            2 => view! { <h3>{inlines(content)}</h3> }.into_any(),
            3 => view! { <h4>{inlines(content)}</h4> }.into_any(),
            4 => view! { <h5>{inlines(content)}</h5> }.into_any(),
            _ => view! { <h6>{inlines(content)}</h6> }.into_any(),
        },
        Block::List {
            start: Some(start),
            items,
        } => view! { <ol start=start>{list_items(items)}</ol> }.into_any(),
        Block::List { start: None, items } => view! { <ul>{list_items(items)}</ul> }.into_any(),
        Block::Code { language, text } => {
            view! { <pre><code data-language=language>{text}</code></pre> }.into_any()
        }
        Block::Quote(content) => view! { <blockquote>{blocks(content)}</blockquote> }.into_any(),
        Block::Rule => view! { <hr/> }.into_any(),
        Block::Note {
            added,
            blocks: content,
        } => view! {
            <details class="note">
                <summary>{format!("Note added {}", readable_time(&added))}</summary>
                {blocks(content)}
            </details>
        }
        .into_any(),
    }
}

fn list_items(items: Vec<Vec<Block>>) -> AnyView {
    items
        .into_iter()
        .map(|item| view! { <li>{blocks(item)}</li> })
        .collect_view()
        .into_any()
}

fn inlines(content: Vec<Inline>) -> AnyView {
    content.into_iter().map(inline).collect_view().into_any()
}

fn inline(inline: Inline) -> AnyView {
    match inline {
        Inline::Text(text) => text.into_any(),
        Inline::Code(text) => view! { <code>{text}</code> }.into_any(),
        Inline::Emphasis(content) => view! { <em>{inlines(content)}</em> }.into_any(),
        Inline::Strong(content) => view! { <strong>{inlines(content)}</strong> }.into_any(),
        Inline::Strikethrough(content) => view! { <s>{inlines(content)}</s> }.into_any(),
        Inline::Link { href, content } => view! {
            <a href=href target="_blank" rel="noopener noreferrer nofollow">{inlines(content)}</a>
        }
        .into_any(),
        Inline::Break => view! { <br/> }.into_any(),
        Inline::Check(done) => view! {
            <input type="checkbox" disabled checked=done aria-label=if done { "done" } else { "not done" }/>
        }
        .into_any(),
    }
}
