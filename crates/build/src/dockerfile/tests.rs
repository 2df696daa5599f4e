//! Whole-file tests: real Dockerfile snippets through [`super::parse`].

use std::collections::HashMap;
use std::time::Duration;

use super::lex::{expand, expand_words};
use super::*;

fn ok(src: &str) -> Dockerfile {
    match parse(src) {
        Ok(d) => d,
        Err(e) => panic!("parse failed: {e}\n---\n{src}"),
    }
}

fn fail(src: &str) -> String {
    match parse(src) {
        Ok(d) => panic!("parsed but should not: {d:#?}"),
        Err(e) => e.to_string(),
    }
}

/// The only instruction of the first stage.
fn only(src: &str) -> Instruction {
    let d = ok(src);
    assert_eq!(
        d.stages[0].instructions.len(),
        1,
        "{:#?}",
        d.stages[0].instructions
    );
    d.stages[0].instructions[0].clone()
}

fn run(src: &str) -> RunInstruction {
    match only(src).kind {
        Kind::Run(r) => r,
        k => panic!("not RUN: {k:?}"),
    }
}

fn copy(src: &str) -> CopyInstruction {
    match only(src).kind {
        Kind::Copy(c) => c,
        k => panic!("not COPY: {k:?}"),
    }
}

fn add(src: &str) -> AddInstruction {
    match only(src).kind {
        Kind::Add(a) => a,
        k => panic!("not ADD: {k:?}"),
    }
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const NODE_APP: &str = r#"# syntax=docker/dockerfile:1
ARG NODE_VERSION=20
ARG ALPINE=3.19

FROM --platform=$BUILDPLATFORM node:${NODE_VERSION}-alpine${ALPINE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev

FROM node:${NODE_VERSION}-alpine${ALPINE} AS Build
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
RUN npm run build

FROM gcr.io/distroless/nodejs20-debian12
ENV NODE_ENV=production PORT=8080
COPY --from=build --chown=1000:1000 /app/dist /app
EXPOSE 8080
USER 1000
CMD ["/app/server.js"]
"#;

#[test]
fn multi_stage_node_app() {
    let d = ok(NODE_APP);
    assert_eq!(d.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(d.meta_args.len(), 2);
    let Kind::Arg { args } = &d.meta_args[0].kind else {
        panic!()
    };
    assert_eq!(args[0].name, "NODE_VERSION");
    assert_eq!(args[0].default.as_deref(), Some("20"));

    assert_eq!(d.stages.len(), 3);
    let deps = &d.stages[0];
    assert_eq!(deps.name(), Some("deps"));
    assert_eq!(deps.from.image, "node:${NODE_VERSION}-alpine${ALPINE}");
    assert_eq!(deps.from.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(deps.line, 5);
    assert_eq!(deps.instructions.len(), 3);
    let Kind::Run(r) = &deps.instructions[2].kind else {
        panic!()
    };
    assert_eq!(r.command, CommandLine::Shell("npm ci --omit=dev".into()));
    assert_eq!(r.mounts[0].kind, MountType::Cache);
    assert_eq!(r.mounts[0].target.as_deref(), Some("/root/.npm"));
    assert_eq!(
        (
            deps.instructions[2].start_line,
            deps.instructions[2].end_line
        ),
        (8, 9)
    );

    // Stage names are lower-cased, and found by name or index.
    assert_eq!(d.stages[1].name(), Some("build"));
    assert_eq!(d.stage("BUILD").map(|s| s.index), Some(1));
    assert_eq!(d.stage("2").map(|s| s.index), Some(2));
    assert!(d.stage("nope").is_none());

    let last = &d.stages[2];
    assert_eq!(last.name(), None);
    assert!(!last.from.is_scratch());
    let kinds: Vec<&str> = last
        .instructions
        .iter()
        .map(|i| i.keyword.as_str())
        .collect();
    assert_eq!(kinds, ["ENV", "COPY", "EXPOSE", "USER", "CMD"]);
    let Kind::Copy(c) = &last.instructions[1].kind else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("1000:1000"));
    assert_eq!(
        (c.sources.as_slice(), c.dest.as_str()),
        (&["/app/dist".to_string()][..], "/app")
    );
    let Kind::Cmd { command } = &last.instructions[4].kind else {
        panic!()
    };
    assert_eq!(command, &CommandLine::Exec(vec!["/app/server.js".into()]));
    assert_eq!(last.instructions[4].original, r#"CMD ["/app/server.js"]"#);
    assert!(d.warnings.is_empty());
}

#[test]
fn the_model_serializes_to_json() {
    let d = ok("FROM scratch AS s\nCOPY a /b\n");
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["stages"][0]["from"]["name"], "s");
    assert_eq!(
        v["stages"][0]["instructions"][0]["kind"]["instruction"],
        "copy"
    );
    assert_eq!(v["stages"][0]["instructions"][0]["kind"]["dest"], "/b");
}

// ---- directives ----

#[test]
fn directives_are_recorded_case_insensitively() {
    let d = ok("# SYNTAX = docker/dockerfile:1.7\n#check=skip=all\n# Escape=`\nFROM scratch\n");
    assert_eq!(
        d.directives.syntax.as_deref(),
        Some("docker/dockerfile:1.7")
    );
    assert_eq!(d.directives.check.as_deref(), Some("skip=all"));
    assert_eq!(d.directives.escape, '`');
}

#[test]
fn directives_stop_at_the_first_other_line() {
    // After a comment, `# escape=` is just a comment.
    let d = ok("# a comment\n# escape=`\nFROM scratch\nRUN a \\\n  b\n");
    assert_eq!(d.directives.escape, '\\');
    let Kind::Run(r) = &d.stages[0].instructions[0].kind else {
        panic!()
    };
    assert_eq!(r.command, CommandLine::Shell("a   b".into()));
    // A blank line ends them too, and so does an unknown directive.
    assert_eq!(ok("\n# escape=`\nFROM scratch\n").directives.escape, '\\');
    assert_eq!(
        ok("# foo=bar\n# escape=`\nFROM scratch\n")
            .directives
            .escape,
        '\\'
    );
    // And an instruction.
    assert_eq!(ok("FROM scratch\n# syntax=x\n").directives.syntax, None);
}

#[test]
fn bad_directives() {
    assert_eq!(
        fail("# escape=`\n# escape=\\\nFROM scratch\n"),
        "Dockerfile:2: only one escape parser directive can be used"
    );
    assert_eq!(
        fail("# escape=x\nFROM scratch\n"),
        "Dockerfile:1: invalid escape token 'x' does not match ` or \\"
    );
}

#[test]
fn windows_style_backtick_escape() {
    let src = "# escape=`\n\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\nCOPY testfile.txt c:\\\nRUN dir c:\\ `\n    && echo done\nWORKDIR c:\\app\n";
    let d = ok(src);
    let ins = &d.stages[0].instructions;
    let Kind::Copy(c) = &ins[0].kind else {
        panic!()
    };
    assert_eq!(
        c.dest, "c:\\",
        "a backslash is not a continuation with escape=`"
    );
    let Kind::Run(r) = &ins[1].kind else { panic!() };
    assert_eq!(
        r.command,
        CommandLine::Shell("dir c:\\     && echo done".into())
    );
    assert_eq!((ins[1].start_line, ins[1].end_line), (5, 6));
    let Kind::Workdir { path } = &ins[2].kind else {
        panic!()
    };
    assert_eq!(path, "c:\\app");
    // Expansion uses the same escape character.
    assert_eq!(
        expand(path, &env(&[]), d.directives.escape).unwrap().value,
        "c:\\app"
    );
}

// ---- comments and continuations ----

#[test]
fn comments_inside_a_continued_instruction_are_dropped() {
    let src = "FROM debian\nRUN apt-get update \\\n# install the tools\n    && apt-get install -y \\\n        # curl for healthchecks\n        curl \\\n        git\n# trailing comment\nCMD bash\n";
    let d = ok(src);
    let ins = &d.stages[0].instructions;
    assert_eq!(ins.len(), 2);
    let Kind::Run(r) = &ins[0].kind else { panic!() };
    assert_eq!(
        r.command,
        CommandLine::Shell(
            "apt-get update     && apt-get install -y         curl         git".into()
        )
    );
    assert_eq!((ins[0].start_line, ins[0].end_line), (2, 7));
    assert_eq!(ins[1].start_line, 9);
}

#[test]
fn empty_continuation_lines_are_accepted_with_a_warning() {
    let d = ok("FROM scratch\nENV A=1 \\\n\n    B=2\nLABEL x=y\n");
    let Kind::Env { pairs } = &d.stages[0].instructions[0].kind else {
        panic!()
    };
    assert_eq!(pairs.len(), 2);
    assert_eq!((pairs[1].key.as_str(), pairs[1].value.as_str()), ("B", "2"));
    assert_eq!(d.warnings.len(), 1);
    assert_eq!(d.warnings[0].line, 2);
    assert!(
        d.warnings[0]
            .message
            .starts_with("Empty continuation line found in: ENV A=1")
    );
    assert_eq!(d.stages[0].instructions[1].start_line, 5);
}

#[test]
fn continuation_details() {
    // At the end of the file.
    let r = run("FROM scratch\nRUN echo a \\");
    assert_eq!(r.command, CommandLine::Shell("echo a".into()));
    // An escaped escape is not a continuation.
    let d = ok("FROM scratch\nRUN echo a\\\\\nRUN echo b\n");
    assert_eq!(d.stages[0].instructions.len(), 2);
    // Trailing spaces after the escape are allowed; CRLF files work.
    let r = run("FROM scratch\r\nRUN echo a \\  \r\n  b\r\n");
    assert_eq!(r.command, CommandLine::Shell("echo a   b".into()));
    // Leading white space before instructions and a BOM are ignored.
    let d = ok("\u{feff}  from scratch\n\t  run true\n");
    assert_eq!(d.stages[0].instructions[0].keyword, "run");
}

// ---- exec vs shell form ----

#[test]
fn json_form_only_for_a_json_array_of_strings() {
    let d = ok(concat!(
        "FROM scratch\n",
        "CMD [\"echo\", \"a b\"]\n",
        "ENTRYPOINT [echo, a]\n",
        "RUN [ \"sh\", \"-c\", \"x\" ]  \n",
        "CMD [\"unterminated\"\n",
        "ENTRYPOINT []\n",
        "CMD echo \"$HOME\"\n",
    ));
    let forms: Vec<CommandLine> = d.stages[0]
        .instructions
        .iter()
        .map(|i| match &i.kind {
            Kind::Cmd { command } | Kind::Entrypoint { command } => command.clone(),
            Kind::Run(r) => r.command.clone(),
            k => panic!("{k:?}"),
        })
        .collect();
    assert_eq!(
        forms,
        [
            CommandLine::Exec(vec!["echo".into(), "a b".into()]),
            CommandLine::Shell("[echo, a]".into()),
            CommandLine::Exec(vec!["sh".into(), "-c".into(), "x".into()]),
            CommandLine::Shell("[\"unterminated\"".into()),
            CommandLine::Exec(vec![]),
            CommandLine::Shell("echo \"$HOME\"".into()),
        ]
    );
}

#[test]
fn a_json_array_of_other_things_is_an_error_as_in_buildkit() {
    assert_eq!(
        fail("FROM scratch\nCMD [\"echo\", 1]\n"),
        "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only"
    );
}

#[test]
fn copy_and_volume_json_forms() {
    let c = copy("FROM scratch\nCOPY [\"my file.txt\", \"other\", \"/dest dir/\"]\n");
    assert!(c.json);
    assert_eq!(c.sources, ["my file.txt", "other"]);
    assert_eq!(c.dest, "/dest dir/");
    let d = ok("FROM scratch\nVOLUME [\"/data\", \"/logs\"]\nVOLUME /a /b\n");
    let vols: Vec<Vec<String>> = d.stages[0]
        .instructions
        .iter()
        .map(|i| match &i.kind {
            Kind::Volume { paths } => paths.clone(),
            k => panic!("{k:?}"),
        })
        .collect();
    assert_eq!(vols, [vec!["/data", "/logs"], vec!["/a", "/b"]]);
    assert_eq!(
        fail("FROM scratch\nVOLUME [\"\"]\n"),
        "Dockerfile:2: VOLUME specified can not be an empty string"
    );
}

// ---- heredocs ----

#[test]
fn run_heredoc_script() {
    let src = "FROM alpine\nRUN <<EOF\napk add curl\necho \"$HOME\"\nEOF\nRUN echo after\n";
    let d = ok(src);
    let ins = &d.stages[0].instructions;
    let Kind::Run(r) = &ins[0].kind else { panic!() };
    assert_eq!(r.command, CommandLine::Shell("<<EOF".into()));
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(r.heredocs[0].name, "EOF");
    assert_eq!(r.heredocs[0].content, "apk add curl\necho \"$HOME\"\n");
    assert!(r.heredocs[0].expand);
    assert_eq!((ins[0].start_line, ins[0].end_line), (2, 5));
    assert_eq!(ins[0].original, "RUN <<EOF");
    assert_eq!(ins[1].start_line, 6);
}

#[test]
fn several_heredocs_in_one_instruction() {
    let src = "FROM alpine\nRUN <<FILE1 cat > file1 && <<'FILE2' cat > file2 && 3<<-END cat <&3\nI am\nfirst\nFILE1\nI am $second\nFILE2\n\t\tthird\n\tEND\n";
    let r = run(src);
    let docs: Vec<(&str, u32, bool, bool, &str)> = r
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.fd, h.expand, h.chomp, h.content.as_str()))
        .collect();
    assert_eq!(
        docs,
        [
            ("FILE1", 0, true, false, "I am\nfirst\n"),
            ("FILE2", 0, false, false, "I am $second\n"),
            ("END", 3, true, true, "third\n"),
        ]
    );
}

#[test]
fn copy_heredoc_creates_files() {
    let src = "FROM scratch\nCOPY <<\"EOT\" <<-robots /srv/\n{\"a\": \"$X\"}\nEOT\n\tUser-agent: *\n\trobots\nCOPY --chmod=0755 <<EOF local.sh /usr/bin/\n#!/bin/sh\nEOF\n";
    let d = ok(src);
    let ins = &d.stages[0].instructions;
    let Kind::Copy(c) = &ins[0].kind else {
        panic!()
    };
    assert!(c.sources.is_empty());
    assert_eq!(c.dest, "/srv/");
    assert_eq!(c.heredocs[0].name, "EOT");
    assert_eq!(c.heredocs[0].content, "{\"a\": \"$X\"}\n");
    assert!(
        !c.heredocs[0].expand,
        "a quoted delimiter means no expansion"
    );
    assert_eq!(c.heredocs[1].name, "robots");
    assert_eq!(
        c.heredocs[1].content, "User-agent: *\n",
        "<<- strips leading tabs"
    );
    assert!(c.heredocs[1].expand);
    let Kind::Copy(c) = &ins[1].kind else {
        panic!()
    };
    assert_eq!(c.sources, ["local.sh"]);
    assert_eq!(
        c.heredocs[0].content, "#!/bin/sh\n",
        "a heredoc line starting with # is content"
    );
    assert_eq!(c.chmod.as_deref(), Some("0755"));
    assert_eq!(ins[1].start_line, 7);
}

#[test]
fn heredocs_only_for_run_copy_add() {
    // CMD keeps `<<EOF` as text and the following lines are instructions.
    let d = ok("FROM scratch\nCMD cat <<EOF\nLABEL a=b\n");
    assert_eq!(d.stages[0].instructions.len(), 2);
    // The exec form has no heredocs either.
    let r = run("FROM scratch\nRUN [\"cat\", \"<<EOF\"]\n");
    assert!(r.heredocs.is_empty());
    let a = add("FROM scratch\nADD <<EOF /x\nhello\nEOF\n");
    assert_eq!(a.heredocs[0].content, "hello\n");
}

#[test]
fn heredoc_errors() {
    assert_eq!(
        fail("FROM scratch\nRUN <<EOF\necho hi\nEOFX\n"),
        "Dockerfile:2: unterminated heredoc: no line \"EOF\" ends it"
    );
    assert_eq!(
        fail("FROM scratch\nCOPY a <<EOF\nx\nEOF\n"),
        "Dockerfile:2: COPY cannot accept a heredoc as a destination"
    );
}

#[test]
fn onbuild_heredoc() {
    let ins = only("FROM scratch\nONBUILD RUN <<EOF\necho hi\nEOF\n");
    let Kind::Onbuild(o) = &ins.kind else {
        panic!()
    };
    assert_eq!(o.expression, "RUN <<EOF\necho hi\nEOF");
    let Kind::Run(r) = &o.trigger.kind else {
        panic!()
    };
    assert_eq!(r.heredocs[0].content, "echo hi\n");
}

// ---- instructions ----

#[test]
fn from_forms_and_errors() {
    let d = ok("FROM scratch\nFROM --platform=linux/arm64 busybox:1.36 as Tools\n");
    assert!(d.stages[0].from.is_scratch());
    assert_eq!(d.stages[1].from.name.as_deref(), Some("tools"));
    assert_eq!(d.stages[1].from.platform.as_deref(), Some("linux/arm64"));
    assert_eq!(
        fail("FROM scratch\nFROM a b\n"),
        "Dockerfile:2: FROM requires either one or three arguments"
    );
    assert_eq!(
        fail("FROM\n"),
        "Dockerfile:1: FROM requires either one or three arguments"
    );
    assert_eq!(
        fail("FROM a AS 1st\n"),
        "Dockerfile:1: invalid name for build stage: \"1st\", name can't start with a number or contain symbols"
    );
    assert_eq!(
        fail("FROM a AS x\nFROM b AS X\n"),
        "Dockerfile:2: duplicate stage name \"x\""
    );
    assert_eq!(
        fail("FROM --platfrom=x a\n"),
        "Dockerfile:1: unknown flag for FROM: --platfrom (did you mean --platform?)"
    );
}

#[test]
fn arg_with_several_names() {
    let ins = only("FROM scratch\nARG A B=2 C=\"x y\" D=\n");
    let Kind::Arg { args } = &ins.kind else {
        panic!()
    };
    let got: Vec<(&str, Option<&str>)> = args
        .iter()
        .map(|a| (a.name.as_str(), a.default.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("A", None),
            ("B", Some("2")),
            ("C", Some("\"x y\"")),
            ("D", Some(""))
        ]
    );
    // The builder's expansion removes the quotes.
    assert_eq!(expand("\"x y\"", &env(&[]), '\\').unwrap().value, "x y");
    assert_eq!(
        fail("FROM scratch\nARG =x\n"),
        "Dockerfile:2: ARG names can not be blank"
    );
    assert_eq!(
        fail("FROM scratch\nARG\n"),
        "Dockerfile:2: ARG requires at least one argument"
    );
}

#[test]
fn env_forms() {
    let d = ok(concat!(
        "FROM scratch\n",
        "ENV A=1 B=\"two words\" C=three\\ words D=\n",
        "ENV LEGACY the rest of the line\n",
        "ENV PATH=/opt/bin:$PATH\n",
    ));
    let all: Vec<Vec<(String, String)>> = d.stages[0]
        .instructions
        .iter()
        .map(|i| match &i.kind {
            Kind::Env { pairs } => pairs
                .iter()
                .map(|p| (p.key.clone(), p.value.clone()))
                .collect(),
            k => panic!("{k:?}"),
        })
        .collect();
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        all,
        [
            vec![
                s("A", "1"),
                s("B", "\"two words\""),
                s("C", "three\\ words"),
                s("D", "")
            ],
            vec![s("LEGACY", "the rest of the line")],
            vec![s("PATH", "/opt/bin:$PATH")],
        ]
    );
    let e = env(&[("PATH", "/usr/bin")]);
    assert_eq!(expand(&all[0][2].1, &e, '\\').unwrap().value, "three words");
    let x = expand(&all[2][0].1, &e, '\\').unwrap();
    assert_eq!(x.value, "/opt/bin:/usr/bin");
    assert_eq!(x.used.into_iter().collect::<Vec<_>>(), ["PATH"]);

    assert_eq!(
        fail("FROM scratch\nENV ONLYKEY\n"),
        "Dockerfile:2: ENV must have two arguments"
    );
    assert_eq!(
        fail("FROM scratch\nENV A=1 B\n"),
        "Dockerfile:2: Syntax error - can't find = in \"B\". Must be of the form: name=value"
    );
    assert_eq!(
        fail("FROM scratch\nENV =1\n"),
        "Dockerfile:2: ENV names can not be blank"
    );
    assert_eq!(
        fail("FROM scratch\nENV\n"),
        "Dockerfile:2: ENV requires at least one argument"
    );
}

#[test]
fn label_and_maintainer() {
    let d = ok(concat!(
        "FROM scratch\n",
        "LABEL org.opencontainers.image.title=\"My app\" \"with space\"=yes version=1\n",
        "MAINTAINER Jane Doe <jane@example.com>\n",
    ));
    let ins = &d.stages[0].instructions;
    let Kind::Label { pairs } = &ins[0].kind else {
        panic!()
    };
    assert_eq!(pairs.len(), 3);
    assert_eq!(pairs[0].value, "\"My app\"");
    assert_eq!(pairs[1].key, "\"with space\"");
    let Kind::Maintainer { name } = &ins[1].kind else {
        panic!()
    };
    assert_eq!(name, "Jane Doe <jane@example.com>");
}

#[test]
fn single_argument_instructions() {
    let d = ok("FROM scratch\nWORKDIR /app/$SUB\nUSER app:staff\nSTOPSIGNAL SIGQUIT\n");
    let ins = &d.stages[0].instructions;
    assert_eq!(
        ins[0].kind,
        Kind::Workdir {
            path: "/app/$SUB".into()
        }
    );
    assert_eq!(
        ins[1].kind,
        Kind::User {
            user: "app:staff".into()
        }
    );
    assert_eq!(
        ins[2].kind,
        Kind::StopSignal {
            signal: "SIGQUIT".into()
        }
    );
    assert_eq!(
        fail("FROM scratch\nWORKDIR\n"),
        "Dockerfile:2: WORKDIR requires exactly one argument"
    );
    assert_eq!(
        fail("FROM scratch\nUSER\n"),
        "Dockerfile:2: USER requires exactly one argument"
    );
}

#[test]
fn expose_sorted_and_expanded_as_words() {
    let ins = only("FROM scratch\nEXPOSE 8080/tcp 53/udp $EXTRA\n");
    let Kind::Expose { ports } = &ins.kind else {
        panic!()
    };
    assert_eq!(ports, &["$EXTRA", "53/udp", "8080/tcp"]);
    let e = env(&[("EXTRA", "9000 9001")]);
    assert_eq!(
        expand_words(&ports[0], &e, '\\').unwrap().words,
        ["9000", "9001"]
    );
    assert_eq!(
        fail("FROM scratch\nEXPOSE\n"),
        "Dockerfile:2: EXPOSE requires at least one argument"
    );
}

#[test]
fn shell_must_be_json() {
    let ins = only("FROM scratch\nSHELL [\"powershell\", \"-command\"]\n");
    assert_eq!(
        ins.kind,
        Kind::Shell {
            shell: vec!["powershell".into(), "-command".into()]
        }
    );
    assert_eq!(
        fail("FROM scratch\nSHELL /bin/bash -c\n"),
        "Dockerfile:2: SHELL requires the arguments to be in JSON form"
    );
    assert_eq!(
        fail("FROM scratch\nSHELL []\n"),
        "Dockerfile:2: SHELL requires at least one argument"
    );
}

#[test]
fn healthcheck_forms() {
    let d = ok(concat!(
        "FROM scratch\n",
        "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=5s --start-interval=500ms --retries=3 \\\n",
        "  CMD curl -f http://localhost/ || exit 1\n",
        "HEALTHCHECK CMD [\"/bin/check\", \"--quick\"]\n",
        "HEALTHCHECK none\n",
        "HEALTHCHECK --interval=0s CMD true\n",
    ));
    let hc: Vec<&Healthcheck> = d.stages[0]
        .instructions
        .iter()
        .map(|i| match &i.kind {
            Kind::Healthcheck(h) => h,
            k => panic!("{k:?}"),
        })
        .collect();
    let Healthcheck::Cmd(c) = hc[0] else { panic!() };
    assert_eq!(c.test, ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]);
    assert_eq!(c.interval, Some(Duration::from_secs(30)));
    assert_eq!(c.timeout, Some(Duration::from_secs(90)));
    assert_eq!(c.start_period, Some(Duration::from_secs(5)));
    assert_eq!(c.start_interval, Some(Duration::from_millis(500)));
    assert_eq!(c.retries, Some(3));
    let Healthcheck::Cmd(c) = hc[1] else { panic!() };
    assert_eq!(c.test, ["CMD", "/bin/check", "--quick"]);
    assert_eq!((c.interval, c.retries), (None, None));
    assert_eq!(hc[2], &Healthcheck::None);
    let Healthcheck::Cmd(c) = hc[3] else { panic!() };
    assert_eq!(c.interval, None, "zero means inherit");
}

#[test]
fn healthcheck_errors() {
    let cases = [
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        (
            "HEALTHCHECK RUN x",
            "Unknown type \"RUN\" in HEALTHCHECK (try CMD)",
        ),
        (
            "HEALTHCHECK --interval=10 CMD x",
            "invalid duration \"10\" for --interval",
        ),
        (
            "HEALTHCHECK --timeout=10us CMD x",
            "Interval \"timeout\" cannot be less than 1ms",
        ),
        (
            "HEALTHCHECK --retries=-1 CMD x",
            "--retries cannot be negative (-1)",
        ),
        (
            "HEALTHCHECK --retries=many CMD x",
            "invalid value for --retries: many",
        ),
        (
            "HEALTHCHECK --intervall=1s CMD x",
            "unknown flag for HEALTHCHECK: --intervall (did you mean --interval?)",
        ),
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
    ];
    for (line, want) in cases {
        assert_eq!(
            fail(&format!("FROM scratch\n{line}\n")),
            format!("Dockerfile:2: {want}"),
            "{line}"
        );
    }
}

#[test]
fn onbuild_triggers() {
    let ins = only("FROM scratch\nONBUILD COPY --from=base . /app/src\n");
    let Kind::Onbuild(o) = &ins.kind else {
        panic!()
    };
    assert_eq!(o.expression, "COPY --from=base . /app/src");
    let Kind::Copy(c) = &o.trigger.kind else {
        panic!()
    };
    assert_eq!(c.from.as_deref(), Some("base"));
    assert_eq!(o.trigger.start_line, 2);
    assert_eq!(
        fail("FROM scratch\nONBUILD ONBUILD RUN x\n"),
        "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(
        fail("FROM scratch\nonbuild from x\n"),
        "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        fail("FROM scratch\nONBUILD MAINTAINER me\n"),
        "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        fail("FROM scratch\nONBUILD\n"),
        "Dockerfile:2: ONBUILD requires at least one argument"
    );
}

#[test]
fn copy_flags() {
    let c = copy(
        "FROM scratch\nCOPY --link --parents --exclude=*.tmp --exclude=.git --chmod=644 --from=0 a/ b/ /dst/\n",
    );
    assert!(c.link && c.parents);
    assert_eq!(c.excludes, ["*.tmp", ".git"]);
    assert_eq!(c.chmod.as_deref(), Some("644"));
    assert_eq!(c.from.as_deref(), Some("0"));
    assert_eq!(c.sources, ["a/", "b/"]);
    let c = copy("FROM scratch\nCOPY --link=false --chown=\"app user\" x /y\n");
    assert!(!c.link);
    assert_eq!(c.chown.as_deref(), Some("app user"));

    let cases = [
        (
            "COPY --checksum=sha256:ab x /y",
            "unknown flag for COPY: --checksum",
        ),
        (
            "COPY --keep-git-dir x /y",
            "unknown flag for COPY: --keep-git-dir",
        ),
        (
            "COPY --frm=a x /y",
            "unknown flag for COPY: --frm (did you mean --from?)",
        ),
        (
            "COPY --from=a --from=b x /y",
            "duplicate flag specified: --from",
        ),
        ("COPY --from x /y", "missing a value on flag: --from"),
        ("COPY --link= x /y", "missing a value on flag: --link"),
        (
            "COPY --link=maybe x /y",
            "expecting boolean value for flag --link, not: maybe",
        ),
        (
            "COPY onlyone",
            "COPY requires at least two arguments, but only one was provided. Destination could not be determined",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(
            fail(&format!("FROM scratch\n{line}\n")),
            format!("Dockerfile:2: {want}"),
            "{line}"
        );
    }
}

#[test]
fn add_flags() {
    let a = add(concat!(
        "FROM scratch\n",
        "ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d \\\n",
        "    --keep-git-dir=true --unpack=false --exclude=docs https://example.com/x.tar.gz /opt/\n",
    ));
    assert!(a.checksum.as_deref().unwrap().starts_with("sha256:2445"));
    assert_eq!(a.keep_git_dir, Some(true));
    assert_eq!(a.unpack, Some(false));
    assert_eq!(a.excludes, ["docs"]);
    assert_eq!(a.sources, ["https://example.com/x.tar.gz"]);
    let a = add("FROM scratch\nADD x /y\n");
    assert_eq!((a.keep_git_dir, a.unpack, a.link), (None, None, false));
    assert_eq!(
        fail("FROM scratch\nADD --from=a x /y\n"),
        "Dockerfile:2: unknown flag for ADD: --from"
    );
    assert_eq!(
        fail("FROM scratch\nADD --parents x /y\n"),
        "Dockerfile:2: unknown flag for ADD: --parents"
    );
}

#[test]
fn run_mounts() {
    let r = run(concat!(
        "FROM scratch\n",
        "RUN --mount=type=cache,id=apt,target=/var/cache/apt,sharing=locked,uid=1000,gid=1000,mode=0755 \\\n",
        "    --mount=type=bind,from=build,source=/out,dst=/in,rw \\\n",
        "    --mount=type=tmpfs,destination=/tmp,size=64m \\\n",
        "    --mount=type=secret,id=npmrc,target=/root/.npmrc,required \\\n",
        "    --mount=type=secret,id=token,env=TOKEN \\\n",
        "    --mount=type=ssh \\\n",
        "    --mount=target=/src,ro=false \\\n",
        "    --network=none --security=insecure make\n",
    ));
    let m = &r.mounts;
    assert_eq!(m.len(), 7);
    assert_eq!(m[0].kind, MountType::Cache);
    assert_eq!(m[0].id.as_deref(), Some("apt"));
    assert_eq!(m[0].sharing, Some(Sharing::Locked));
    assert_eq!(
        (m[0].uid, m[0].gid, m[0].mode),
        (Some(1000), Some(1000), Some(0o755))
    );
    assert!(!m[0].readonly, "cache mounts are writable by default");
    assert_eq!(m[1].kind, MountType::Bind);
    assert_eq!(m[1].from.as_deref(), Some("build"));
    assert_eq!(
        (m[1].source.as_deref(), m[1].target.as_deref()),
        (Some("/out"), Some("/in"))
    );
    assert!(!m[1].readonly);
    assert_eq!(m[2].kind, MountType::Tmpfs);
    assert_eq!(m[2].size, Some(64 << 20));
    assert!(
        m[3].required && m[3].readonly,
        "secrets are read-only by default"
    );
    assert_eq!(m[4].env.as_deref(), Some("TOKEN"));
    assert_eq!(m[5].kind, MountType::Ssh);
    assert_eq!(m[6].kind, MountType::Bind, "bind is the default type");
    assert!(!m[6].readonly);
    assert_eq!(m[6].spec, "target=/src,ro=false");
    assert_eq!(r.network, Network::None);
    assert_eq!(r.security, Security::Insecure);
    assert_eq!(r.command, CommandLine::Shell("make".into()));

    let r = run("FROM scratch\nRUN --mount=target=/x true\n");
    assert!(r.mounts[0].readonly, "bind mounts are read-only by default");
    assert_eq!(
        (r.network, r.security),
        (Network::Default, Security::Sandbox)
    );
}

#[test]
fn run_mount_values_with_variables_are_checked_once_expanded() {
    let r = run("FROM scratch\nRUN --mount=type=cache,target=$HOME/.cache,uid=$UID make\n");
    let m = &r.mounts[0];
    assert_eq!(m.target.as_deref(), Some("$HOME/.cache"));
    assert_eq!(m.uid, None);
    let e = env(&[("HOME", "/root"), ("UID", "42")]);
    let again = Mount::parse_expanded(&m.spec, &mut |v| {
        expand(v, &e, '\\')
            .map(|x| x.value)
            .map_err(|e| e.to_string())
    })
    .unwrap();
    assert_eq!(again.target.as_deref(), Some("/root/.cache"));
    assert_eq!(again.uid, Some(42));
    assert_eq!(
        fail("FROM scratch\nRUN --mount=from=$STAGE,target=/x true\n"),
        "Dockerfile:2: 'from' doesn't support variable expansion, define alias stage instead"
    );
}

#[test]
fn run_errors() {
    let cases = [
        (
            "RUN --mount=type=volume,target=/x true",
            "unsupported mount type \"volume\"",
        ),
        (
            "RUN --mount=type=cahce,target=/x true",
            "unsupported mount type \"cahce\" (did you mean cache?)",
        ),
        (
            "RUN --mount=type=cache,sharing=all,target=/x true",
            "unsupported sharing value \"all\"",
        ),
        (
            "RUN --mount=type=bind,sharing=locked,target=/x true",
            "invalid cache sharing set for bind mount",
        ),
        (
            "RUN --mount=type=bind,uid=1,target=/x true",
            "uid not allowed for \"bind\" type mounts",
        ),
        (
            "RUN --mount=type=cache,size=1m,target=/x true",
            "unexpected key 'size' for mount type 'cache'",
        ),
        (
            "RUN --mount=type=bind,required,target=/x true",
            "unexpected key 'required' for mount type 'bind'",
        ),
        (
            "RUN --mount=type=cache,mode=999,target=/x true",
            "invalid value 999 for mode",
        ),
        (
            "RUN --mount=type=tmpfs,size=big,target=/x true",
            "invalid value for size: big",
        ),
        (
            "RUN --mount=type=cache,targt=/x true",
            "unexpected key 'targt' in 'targt=/x' (did you mean target?)",
        ),
        (
            "RUN --mount=type=cache,bogus true",
            "invalid field 'bogus' must be a key=value pair",
        ),
        (
            "RUN --mount=type=secret true",
            "invalid secret mount. one of source, target required",
        ),
        (
            "RUN --mount=type=secret,id=a,src=b true",
            "both source and id can't be set",
        ),
        (
            "RUN --mount=type=secret,id=a,from=x true",
            "secret mount should not have a from",
        ),
        (
            "RUN --mount=target=/x,ro=maybe true",
            "invalid value for ro: maybe",
        ),
        (
            "RUN --network=bridge true",
            "invalid network mode \"bridge\"",
        ),
        ("RUN --security=none true", "security \"none\" is not valid"),
        (
            "RUN --device=/dev/fuse true",
            "unknown flag for RUN: --device",
        ),
        (
            "RUN --mount=target=/x",
            "RUN requires at least one argument",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(
            fail(&format!("FROM scratch\n{line}\n")),
            format!("Dockerfile:2: {want}"),
            "{line}"
        );
    }
}

#[test]
fn flags_on_instructions_without_any() {
    assert_eq!(
        fail("FROM scratch\nENV --x=1 A=b\n"),
        "Dockerfile:2: unknown flag for ENV: --x"
    );
    assert_eq!(
        fail("FROM scratch\nCMD --help\n"),
        "Dockerfile:2: unknown flag for CMD: --help"
    );
    // `--` ends the flags.
    let ins = only("FROM scratch\nCMD -- --help\n");
    assert_eq!(
        ins.kind,
        Kind::Cmd {
            command: CommandLine::Shell("--help".into())
        }
    );
}

// ---- file-level errors ----

#[test]
fn unknown_instruction_names_the_line() {
    assert_eq!(
        fail("FROOM alpine\n"),
        "Dockerfile:1: unknown instruction: FROOM (did you mean FROM?)"
    );
    assert_eq!(
        fail("FROM alpine\nRUN a \\\n  b\n\ncopyy x y\n"),
        "Dockerfile:5: unknown instruction: copyy (did you mean copy?)"
    );
    assert_eq!(
        fail("FROM alpine\nFOOBAR x\n"),
        "Dockerfile:2: unknown instruction: FOOBAR"
    );
    let e = parse_named("FROM a\nBAD\n", "build/Containerfile").unwrap_err();
    assert_eq!(
        e.to_string(),
        "build/Containerfile:2: unknown instruction: BAD (did you mean ADD?)"
    );
    assert_eq!((e.line, e.end_line), (2, 2));
    assert_eq!(e.message, "unknown instruction: BAD (did you mean ADD?)");
}

#[test]
fn line_numbers_count_heredocs_and_continuations() {
    let src = "FROM a\nRUN <<EOF\n1\n2\nEOF\nRUN x \\\n  y\nNOPENOPE\n";
    assert_eq!(fail(src), "Dockerfile:8: unknown instruction: NOPENOPE");
}

#[test]
fn files_without_stages() {
    assert_eq!(fail(""), "Dockerfile: file with no instructions");
    assert_eq!(
        fail("# only a comment\n\n"),
        "Dockerfile:2: file with no instructions"
    );
    assert_eq!(
        fail("ARG A=1\n"),
        "Dockerfile: dockerfile contains no stages to build"
    );
    assert_eq!(
        fail("ARG A=1\nRUN true\nFROM scratch\n"),
        "Dockerfile:2: no build stage in current context: RUN before the first FROM"
    );
}

#[test]
fn substitution_per_instruction_list() {
    use super::lex::EXPANDED_INSTRUCTIONS;
    for kw in [
        "ADD",
        "COPY",
        "ENV",
        "EXPOSE",
        "FROM",
        "LABEL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
        "ARG",
    ] {
        assert!(EXPANDED_INSTRUCTIONS.contains(&kw), "{kw}");
    }
    for kw in [
        "RUN",
        "CMD",
        "ENTRYPOINT",
        "ONBUILD",
        "SHELL",
        "HEALTHCHECK",
        "MAINTAINER",
    ] {
        assert!(!EXPANDED_INSTRUCTIONS.contains(&kw), "{kw}");
    }
    let d = ok("FROM scratch\nworkdir /$A\nRUN echo $A\nONBUILD WORKDIR /$A\n");
    let flags: Vec<bool> = d.stages[0]
        .instructions
        .iter()
        .map(|i| i.expands_variables())
        .collect();
    assert_eq!(flags, [true, false, false]);
}

#[test]
fn heredoc_delimiter_quoting_and_edge_cases() {
    let src = concat!(
        "FROM alpine\n",
        "RUN <<eo'f'\necho 1\neof\n",
        "RUN <<eo\\'f\necho 2\neo'f\n",
        "RUN <<'e'o\\'f\necho 3\neo'f\n",
        "RUN <<'one two'\necho 4\none two\n",
        "RUN <<$EOF\n$EOF\n",
        "RUN <<  EOF  > foo\nEOF\n",
        "COPY <<X <<Y /dest\nY\nX\nX\nY\n",
        "RUN \"<<NOHEREDOC\"\n",
        "RUN --mount=type=cache,target=/foo <<MOUNT python3\nprint('hi')\nMOUNT\n",
        "USER <<INVALID\n",
    );
    let d = ok(src);
    let docs: Vec<Vec<(String, bool, String)>> = d.stages[0]
        .instructions
        .iter()
        .map(|i| {
            let hs = match &i.kind {
                Kind::Run(r) => r.heredocs.clone(),
                Kind::Copy(c) => c.heredocs.clone(),
                _ => Vec::new(),
            };
            hs.into_iter()
                .map(|h| (h.name, h.expand, h.content))
                .collect()
        })
        .collect();
    let h = |n: &str, e: bool, c: &str| vec![(n.to_string(), e, c.to_string())];
    assert_eq!(docs[0], h("eof", false, "echo 1\n"));
    assert_eq!(docs[1], h("eo'f", true, "echo 2\n"));
    assert_eq!(docs[2], h("eo'f", false, "echo 3\n"));
    assert_eq!(docs[3], h("one two", false, "echo 4\n"));
    assert_eq!(docs[4], h("$EOF", true, ""));
    assert_eq!(docs[5], h("EOF", true, ""));
    assert_eq!(
        docs[6],
        [
            ("X".to_string(), true, "Y\n".to_string()),
            ("Y".to_string(), true, "X\n".to_string())
        ]
    );
    assert!(docs[7].is_empty(), "a quoted <<word is not a heredoc");
    assert_eq!(docs[8], h("MOUNT", true, "print('hi')\n"));
    assert_eq!(
        d.stages[0].instructions[9].kind,
        Kind::User {
            user: "<<INVALID".into()
        }
    );
}

#[test]
fn argument_count_messages_for_every_instruction() {
    for kw in ["MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"] {
        assert_eq!(
            fail(&format!("FROM scratch\n{kw}\n")),
            format!("Dockerfile:2: {kw} requires exactly one argument")
        );
    }
    for kw in [
        "ENV",
        "LABEL",
        "ONBUILD",
        "HEALTHCHECK",
        "EXPOSE",
        "VOLUME",
        "ARG",
        "RUN",
    ] {
        assert_eq!(
            fail(&format!("FROM scratch\n{kw}\n")),
            format!("Dockerfile:2: {kw} requires at least one argument")
        );
    }
    for kw in ["ADD", "COPY"] {
        assert!(
            fail(&format!("FROM scratch\n{kw} arg1\n")).starts_with(&format!(
                "Dockerfile:2: {kw} requires at least two arguments"
            )),
        );
    }
}

#[test]
fn odd_inputs_give_errors_not_panics() {
    let keywords = [
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    ];
    let tails = [
        "",
        " foo=bar",
        " a",
        " a b",
        " a b c",
        " 0 0",
        " [",
        " [\"a\"",
        " [1]",
        " \"",
        " '",
        " \\",
        " --",
        " --=",
        " --x",
        " -- a",
        " <<",
        " <<EOF",
        " <<-",
        " a=\"b",
        " ${",
        " é=ü",
        " CMD [\"x\", ",
        " --mount=\"",
        " ONBUILD",
    ];
    for kw in keywords {
        for tail in tails {
            for src in [
                format!("FROM busybox\n{kw}{tail}"),
                format!("FROM busybox\n{kw}{tail}\n"),
            ] {
                // Whatever the outcome, it is a value; a failure names the file and line 2.
                if let Err(e) = parse(&src) {
                    assert!(e.to_string().starts_with("Dockerfile:2: "), "{src:?}: {e}");
                }
            }
        }
    }
}
