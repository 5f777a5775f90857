//! Every SQL example in docs/*.md runs, and prints what the document says it prints.
//!
//! A ```sql block runs through psql in the document's own fresh database (blocks run in order,
//! so earlier ones set up later ones). When the next block is ```output, psql's output must
//! equal it exactly (after trimming the ends of lines). A failing statement fails the test.

use guildstats_e2e::{repo_root, Bounded, Cluster, TestDb};
use std::io::Write;
use std::process::Stdio;

struct Example {
    line: usize,
    sql: String,
    expected: Option<String>,
}

fn examples(markdown: &str) -> Vec<Example> {
    let mut found: Vec<Example> = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let fence = line.trim_end();
        if fence != "```sql" && fence != "```output" {
            continue;
        }
        let body: Vec<&str> = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| l.trim_end() != "```")
            .collect();
        let body = body.join("\n");
        if fence == "```sql" {
            found.push(Example {
                line: number + 1,
                sql: body,
                expected: None,
            });
        } else if let Some(last) = found.last_mut() {
            last.expected = Some(body);
        }
    }
    found
}

fn normalise(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

#[test]
fn sql_examples_in_the_docs_print_what_they_say() {
    let Some(cluster) = Cluster::from_env("docs_examples") else {
        return;
    };
    let docs = repo_root().join("docs");
    let mut files: Vec<_> = std::fs::read_dir(&docs)
        .expect("docs/ exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    let mut checked = 0;
    for file in files {
        let markdown = std::fs::read_to_string(&file).expect("read doc");
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("doc")
            .replace('-', "_");
        let db = TestDb::create(&cluster, &format!("doc_{stem}"));
        for example in examples(&markdown) {
            let mut child = cluster
                .command("psql")
                .args([
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-P",
                    "pager=off",
                    "-d",
                    &db.name,
                ])
                .bounded()
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run psql");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(example.sql.as_bytes())
                .expect("write SQL");
            let output = child.wait_with_output().expect("psql output");
            let place = format!("{}:{}", file.display(), example.line);
            assert!(
                output.status.success(),
                "{place}: the example fails:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            if let Some(expected) = &example.expected {
                assert_eq!(
                    normalise(&String::from_utf8_lossy(&output.stdout)),
                    normalise(expected),
                    "{place}: the output differs from the document"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no SQL examples found in docs/");
}

#[test]
fn example_blocks_are_found_with_their_outputs() {
    let doc = "text\n```sql\nSELECT 1;\n```\n\n```output\n x\n```\n```sql\nSELECT 2;\n```\n";
    let found = examples(doc);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].sql, "SELECT 1;");
    assert_eq!(found[0].expected.as_deref(), Some(" x"));
    assert_eq!(found[1].expected, None);
}
