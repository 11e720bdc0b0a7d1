
use builtin;
use str;

set edit:completion:arg-completer[rollout] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'rollout'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'rollout'= {
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand validate 'Check a runbook and report every problem at once, with its location'
            cand plan 'Show exactly what a run would do, fully rendered, without executing anything'
            cand run 'Run a runbook: execute its steps in order, stop at gates, record every step'
            cand resume 'Continue a paused, waiting or interrupted run from its first unfinished step'
            cand status 'Show where a run stands'
            cand runs 'List runs, newest last'
            cand rollback 'Undo a run: the phases it ran, last first, through their rollback steps (or, with no run of this runbook, the runbook''s own [[rollback]] section). Shows the plan and asks first'
            cand approve 'Approve a sign-off of a run with your SSH key: shows the phase as the operator sees it at the gate, asks, signs (`ssh-keygen -Y sign -n rollout`, with your ssh-agent or `--key`) and delivers the approval to the run'
            cand audit 'Check a run''s audit log (its journal): hash chain, order, seal'
            cand log 'Show a run''s audit log as readable text, phase by phase'
            cand locks 'List target locks, who holds them, and what a killed holder left running'
            cand unlock 'Remove a target lock whose holder is stuck (recorded; a killed holder''s lock needs none: the next run stops what it left running)'
            cand watch 'Team mode: follow a run as its records are committed to the database (from any machine), with who holds it and where; ends when the run''s session is over'
            cand state 'Team mode: move runs between a state directory and the database'
            cand new 'Write a new runbook from a template, asking for what is missing when in a terminal'
            cand completions 'Print the completion script for a shell (see README, "Shell completions")'
            cand man 'Print the man page (roff)'
            cand schema 'Print the JSON Schema of the runbook format, for editors (see docs/runbook-format.md)'
            cand report 'Write a run''s report (timeline, approvals, commands, checks, rollback, audit) from its audit log'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rollout;validate'= {
            cand --var 'Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)'
            cand --vars-file 'Read variables from a TOML file of `name = value` lines (repeatable; later files win)'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;plan'= {
            cand --var 'Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)'
            cand --vars-file 'Read variables from a TOML file of `name = value` lines (repeatable; later files win)'
            cand --format 'Output format'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand --live-checks 'Also run each metric query once (read-only) and show its current value against the threshold'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;run'= {
            cand --var 'Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)'
            cand --vars-file 'Read variables from a TOML file of `name = value` lines (repeatable; later files win)'
            cand --format 'Plan format, with --dry-run'
            cand --state-dir 'Where runs are recorded [default: .rollout/ beside the runbook]'
            cand --output 'How to report progress'
            cand --grace 'Time between interrupt, terminate and kill when stopping a step (or processes a killed earlier run of the target left running)'
            cand --reason 'Why the run goes ahead outside its change window (recorded in the audit log)'
            cand --approve 'Approve a confirm in advance: `--approve GATE`, or `--approve GATE=WORD` for a severe one'
            cand --check 'Tick checklist items in advance: `--check GATE` (all), `--check GATE:N`, or the item''s text'
            cand --signoff 'Sign a sign-off in advance: `--signoff GATE=NAME:ROLE` (repeat for each signer)'
            cand --signoff-file 'A signed approval (`rollout approve --output FILE`, or a request signed with `ssh-keygen -Y sign -n rollout`, given as `REQUEST.sig` beside `REQUEST`); repeat for each signer'
            cand --wait-for-approvals 'Where nobody can answer, wait this long at a sign-off for signed approvals to be delivered (`rollout approve` from elsewhere) before stopping to wait for approval'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand --dry-run 'Show the plan instead of running (exactly `rollout plan`)'
            cand --outside-window 'Start even though it is outside the runbook''s change window (`[runbook.window]`); needs `--reason`, recorded in the audit log'
            cand --yes 'Answer "yes" to plain confirms. Never satisfies a sign-off or a severe confirm'
            cand --no-input 'Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;resume'= {
            cand --runbook 'Team mode: the runbook to resume with when the run''s own file is not on this machine [default: the copy stored with the run]'
            cand --state-dir 'Where runs are recorded [default: .rollout/ beside the runbook]'
            cand --output 'How to report progress'
            cand --grace 'Time between interrupt, terminate and kill when stopping a step (or processes a killed earlier run of the target left running)'
            cand --reason 'Why the run goes ahead outside its change window (recorded in the audit log)'
            cand --approve 'Approve a confirm in advance: `--approve GATE`, or `--approve GATE=WORD` for a severe one'
            cand --check 'Tick checklist items in advance: `--check GATE` (all), `--check GATE:N`, or the item''s text'
            cand --signoff 'Sign a sign-off in advance: `--signoff GATE=NAME:ROLE` (repeat for each signer)'
            cand --signoff-file 'A signed approval (`rollout approve --output FILE`, or a request signed with `ssh-keygen -Y sign -n rollout`, given as `REQUEST.sig` beside `REQUEST`); repeat for each signer'
            cand --wait-for-approvals 'Where nobody can answer, wait this long at a sign-off for signed approvals to be delivered (`rollout approve` from elsewhere) before stopping to wait for approval'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand --allow-changed 'Resume even though the runbook file changed since the run started (shows the change)'
            cand --rerun-in-doubt 'Run again the step that was in flight when rollout stopped'
            cand --skip-in-doubt 'Treat the step that was in flight when rollout stopped as done'
            cand --outside-window 'Start even though it is outside the runbook''s change window (`[runbook.window]`); needs `--reason`, recorded in the audit log'
            cand --yes 'Answer "yes" to plain confirms. Never satisfies a sign-off or a severe confirm'
            cand --no-input 'Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;status'= {
            cand --state-dir 'Where runs are recorded [default: ./.rollout and ./*/.rollout]'
            cand --format 'Output format'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;runs'= {
            cand --state-dir 'Where runs are recorded [default: ./.rollout and ./*/.rollout]'
            cand --format 'Output format'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;rollback'= {
            cand --run 'The run to undo [default: the latest run of this runbook not rolled back yet]'
            cand --to 'Roll back down to this phase (included), leaving earlier phases in place'
            cand --var 'Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)'
            cand --vars-file 'Read variables from a TOML file of `name = value` lines (repeatable; later files win)'
            cand --state-dir 'Where runs are recorded [default: .rollout/ beside the runbook]'
            cand --output 'How to report progress'
            cand --grace 'Time between interrupt, terminate and kill when stopping a step (or processes a killed earlier run of the target left running)'
            cand --reason 'Why the run goes ahead outside its change window (recorded in the audit log)'
            cand --approve 'Approve a confirm in advance: `--approve GATE`, or `--approve GATE=WORD` for a severe one'
            cand --check 'Tick checklist items in advance: `--check GATE` (all), `--check GATE:N`, or the item''s text'
            cand --signoff 'Sign a sign-off in advance: `--signoff GATE=NAME:ROLE` (repeat for each signer)'
            cand --signoff-file 'A signed approval (`rollout approve --output FILE`, or a request signed with `ssh-keygen -Y sign -n rollout`, given as `REQUEST.sig` beside `REQUEST`); repeat for each signer'
            cand --wait-for-approvals 'Where nobody can answer, wait this long at a sign-off for signed approvals to be delivered (`rollout approve` from elsewhere) before stopping to wait for approval'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand --no-run 'Ignore saved runs: run the runbook''s own [[rollback]] section'
            cand --dry-run 'Show the rollback plan, rendered, and do nothing'
            cand --allow-changed 'Roll back even though the runbook changed since the run started (e.g. a fixed rollback step; the change is shown)'
            cand --outside-window 'Start even though it is outside the runbook''s change window (`[runbook.window]`); needs `--reason`, recorded in the audit log'
            cand --yes 'Answer "yes" to plain confirms. Never satisfies a sign-off or a severe confirm'
            cand --no-input 'Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;approve'= {
            cand --gate 'The sign-off step''s id'
            cand --role 'The role you sign as [default: the sign-off''s only role; asked in a terminal]'
            cand --key 'Your SSH key: a private key file, or a public key file whose private key your ssh-agent holds [default: `signing_key` in the user config, else the agent''s first key]'
            cand -o 'Write the signed approval (or the request) to this file (`-`: stdout) instead of delivering it to the run'
            cand --output 'Write the signed approval (or the request) to this file (`-`: stdout) instead of delivering it to the run'
            cand --state-dir 'Where runs are recorded [default: ./.rollout and ./*/.rollout]'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand --request 'Write the text to sign instead of signing it (for `ssh-keygen -Y sign -n rollout` elsewhere; the operator then gives `--signoff-file REQUEST.sig`)'
            cand --yes 'Sign without asking (what is signed is still shown)'
            cand --no-input 'Never prompt, even in a terminal'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;audit'= {
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand verify 'Verify a run''s audit log: every record''s hash, the chain, the order, and the final seal'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rollout;audit;verify'= {
            cand --digest 'A published digest (`sha256:...`, printed at the end of a session) that a seal of the log must carry; what was written after it is listed, session by session'
            cand --state-dir 'Where runs are recorded [default: ./.rollout and ./*/.rollout]'
            cand --format 'Output format'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand --strict 'With --digest: fail when anything follows the published digest'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;audit;help'= {
            cand verify 'Verify a run''s audit log: every record''s hash, the chain, the order, and the final seal'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rollout;audit;help;verify'= {
        }
        &'rollout;audit;help;help'= {
        }
        &'rollout;log'= {
            cand --state-dir 'Where runs are recorded [default: ./.rollout and ./*/.rollout]'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;locks'= {
            cand --state-dir 'Where runs are recorded [default: ./.rollout and ./*/.rollout]'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;unlock'= {
            cand --state-dir 'Where runs are recorded [default: ./.rollout and ./*/.rollout]'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand --yes 'Do not ask for confirmation'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;watch'= {
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;state'= {
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand export 'Write a run''s journal as file mode writes it (`audit verify FILE` checks it offline)'
            cand import 'Copy the runs of a state directory into the database, hashes intact (a run id the database has already is refused)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rollout;state;export'= {
            cand -o 'Write it to this file instead of stdout'
            cand --output 'Write it to this file instead of stdout'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;state;import'= {
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;state;help'= {
            cand export 'Write a run''s journal as file mode writes it (`audit verify FILE` checks it offline)'
            cand import 'Copy the runs of a state directory into the database, hashes intact (a run id the database has already is refused)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rollout;state;help;export'= {
        }
        &'rollout;state;help;import'= {
        }
        &'rollout;state;help;help'= {
        }
        &'rollout;new'= {
            cand --template 'The kind of rollout the runbook walks through'
            cand --service 'The service (Deployment) name, e.g. `payments`'
            cand --namespace 'The Kubernetes namespace'
            cand --image 'The image to roll out, e.g. `registry.example.com/payments:1.4.2`'
            cand --context 'The kubectl context of the target cluster'
            cand --prometheus 'The Prometheus to query in checks [default: `--prometheus-url`, then the user config]'
            cand --owner 'Who owns the runbook (team or person)'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand --force 'Overwrite FILE if it exists'
            cand --no-input 'Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;completions'= {
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;man'= {
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;schema'= {
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;report'= {
            cand --state-dir 'Where runs are recorded [default: ./.rollout and ./*/.rollout]'
            cand --format 'Report format'
            cand -o 'Write the report to this file instead of stdout'
            cand --output 'Write the report to this file instead of stdout'
            cand --color 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them'
            cand --prometheus-url 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]'
            cand --state 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]'
            cand --lease 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'rollout;help'= {
            cand validate 'Check a runbook and report every problem at once, with its location'
            cand plan 'Show exactly what a run would do, fully rendered, without executing anything'
            cand run 'Run a runbook: execute its steps in order, stop at gates, record every step'
            cand resume 'Continue a paused, waiting or interrupted run from its first unfinished step'
            cand status 'Show where a run stands'
            cand runs 'List runs, newest last'
            cand rollback 'Undo a run: the phases it ran, last first, through their rollback steps (or, with no run of this runbook, the runbook''s own [[rollback]] section). Shows the plan and asks first'
            cand approve 'Approve a sign-off of a run with your SSH key: shows the phase as the operator sees it at the gate, asks, signs (`ssh-keygen -Y sign -n rollout`, with your ssh-agent or `--key`) and delivers the approval to the run'
            cand audit 'Check a run''s audit log (its journal): hash chain, order, seal'
            cand log 'Show a run''s audit log as readable text, phase by phase'
            cand locks 'List target locks, who holds them, and what a killed holder left running'
            cand unlock 'Remove a target lock whose holder is stuck (recorded; a killed holder''s lock needs none: the next run stops what it left running)'
            cand watch 'Team mode: follow a run as its records are committed to the database (from any machine), with who holds it and where; ends when the run''s session is over'
            cand state 'Team mode: move runs between a state directory and the database'
            cand new 'Write a new runbook from a template, asking for what is missing when in a terminal'
            cand completions 'Print the completion script for a shell (see README, "Shell completions")'
            cand man 'Print the man page (roff)'
            cand schema 'Print the JSON Schema of the runbook format, for editors (see docs/runbook-format.md)'
            cand report 'Write a run''s report (timeline, approvals, commands, checks, rollback, audit) from its audit log'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'rollout;help;validate'= {
        }
        &'rollout;help;plan'= {
        }
        &'rollout;help;run'= {
        }
        &'rollout;help;resume'= {
        }
        &'rollout;help;status'= {
        }
        &'rollout;help;runs'= {
        }
        &'rollout;help;rollback'= {
        }
        &'rollout;help;approve'= {
        }
        &'rollout;help;audit'= {
            cand verify 'Verify a run''s audit log: every record''s hash, the chain, the order, and the final seal'
        }
        &'rollout;help;audit;verify'= {
        }
        &'rollout;help;log'= {
        }
        &'rollout;help;locks'= {
        }
        &'rollout;help;unlock'= {
        }
        &'rollout;help;watch'= {
        }
        &'rollout;help;state'= {
            cand export 'Write a run''s journal as file mode writes it (`audit verify FILE` checks it offline)'
            cand import 'Copy the runs of a state directory into the database, hashes intact (a run id the database has already is refused)'
        }
        &'rollout;help;state;export'= {
        }
        &'rollout;help;state;import'= {
        }
        &'rollout;help;new'= {
        }
        &'rollout;help;completions'= {
        }
        &'rollout;help;man'= {
        }
        &'rollout;help;schema'= {
        }
        &'rollout;help;report'= {
        }
        &'rollout;help;help'= {
        }
    ]
    $completions[$command]
}
