
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'rollout' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'rollout'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'rollout' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a runbook and report every problem at once, with its location')
            [CompletionResult]::new('plan', 'plan', [CompletionResultType]::ParameterValue, 'Show exactly what a run would do, fully rendered, without executing anything')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a runbook: execute its steps in order, stop at gates, record every step')
            [CompletionResult]::new('resume', 'resume', [CompletionResultType]::ParameterValue, 'Continue a paused, waiting or interrupted run from its first unfinished step')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show where a run stands')
            [CompletionResult]::new('runs', 'runs', [CompletionResultType]::ParameterValue, 'List runs, newest last')
            [CompletionResult]::new('rollback', 'rollback', [CompletionResultType]::ParameterValue, 'Undo a run: the phases it ran, last first, through their rollback steps (or, with no run of this runbook, the runbook''s own [[rollback]] section). Shows the plan and asks first')
            [CompletionResult]::new('approve', 'approve', [CompletionResultType]::ParameterValue, 'Approve a sign-off of a run with your SSH key: shows the phase as the operator sees it at the gate, asks, signs (`ssh-keygen -Y sign -n rollout`, with your ssh-agent or `--key`) and delivers the approval to the run')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Check a run''s audit log (its journal): hash chain, order, seal')
            [CompletionResult]::new('log', 'log', [CompletionResultType]::ParameterValue, 'Show a run''s audit log as readable text, phase by phase')
            [CompletionResult]::new('locks', 'locks', [CompletionResultType]::ParameterValue, 'List target locks, who holds them, and what a killed holder left running')
            [CompletionResult]::new('unlock', 'unlock', [CompletionResultType]::ParameterValue, 'Remove a target lock whose holder is stuck (recorded; a killed holder''s lock needs none: the next run stops what it left running)')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Team mode: follow a run as its records are committed to the database (from any machine), with who holds it and where; ends when the run''s session is over')
            [CompletionResult]::new('state', 'state', [CompletionResultType]::ParameterValue, 'Team mode: move runs between a state directory and the database')
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Write a new runbook from a template, asking for what is missing when in a terminal')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the completion script for a shell (see README, "Shell completions")')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff)')
            [CompletionResult]::new('schema', 'schema', [CompletionResultType]::ParameterValue, 'Print the JSON Schema of the runbook format, for editors (see docs/runbook-format.md)')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Write a run''s report (timeline, approvals, commands, checks, rollback, audit) from its audit log')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'rollout;validate' {
            [CompletionResult]::new('--var', '--var', [CompletionResultType]::ParameterName, 'Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)')
            [CompletionResult]::new('--vars-file', '--vars-file', [CompletionResultType]::ParameterName, 'Read variables from a TOML file of `name = value` lines (repeatable; later files win)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;plan' {
            [CompletionResult]::new('--var', '--var', [CompletionResultType]::ParameterName, 'Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)')
            [CompletionResult]::new('--vars-file', '--vars-file', [CompletionResultType]::ParameterName, 'Read variables from a TOML file of `name = value` lines (repeatable; later files win)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('--live-checks', '--live-checks', [CompletionResultType]::ParameterName, 'Also run each metric query once (read-only) and show its current value against the threshold')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;run' {
            [CompletionResult]::new('--var', '--var', [CompletionResultType]::ParameterName, 'Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)')
            [CompletionResult]::new('--vars-file', '--vars-file', [CompletionResultType]::ParameterName, 'Read variables from a TOML file of `name = value` lines (repeatable; later files win)')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Plan format, with --dry-run')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where runs are recorded [default: .rollout/ beside the runbook]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How to report progress')
            [CompletionResult]::new('--grace', '--grace', [CompletionResultType]::ParameterName, 'Time between interrupt, terminate and kill when stopping a step (or processes a killed earlier run of the target left running)')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why the run goes ahead outside its change window (recorded in the audit log)')
            [CompletionResult]::new('--approve', '--approve', [CompletionResultType]::ParameterName, 'Approve a confirm in advance: `--approve GATE`, or `--approve GATE=WORD` for a severe one')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Tick checklist items in advance: `--check GATE` (all), `--check GATE:N`, or the item''s text')
            [CompletionResult]::new('--signoff', '--signoff', [CompletionResultType]::ParameterName, 'Sign a sign-off in advance: `--signoff GATE=NAME:ROLE` (repeat for each signer)')
            [CompletionResult]::new('--signoff-file', '--signoff-file', [CompletionResultType]::ParameterName, 'A signed approval (`rollout approve --output FILE`, or a request signed with `ssh-keygen -Y sign -n rollout`, given as `REQUEST.sig` beside `REQUEST`); repeat for each signer')
            [CompletionResult]::new('--wait-for-approvals', '--wait-for-approvals', [CompletionResultType]::ParameterName, 'Where nobody can answer, wait this long at a sign-off for signed approvals to be delivered (`rollout approve` from elsewhere) before stopping to wait for approval')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show the plan instead of running (exactly `rollout plan`)')
            [CompletionResult]::new('--outside-window', '--outside-window', [CompletionResultType]::ParameterName, 'Start even though it is outside the runbook''s change window (`[runbook.window]`); needs `--reason`, recorded in the audit log')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer "yes" to plain confirms. Never satisfies a sign-off or a severe confirm')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;resume' {
            [CompletionResult]::new('--runbook', '--runbook', [CompletionResultType]::ParameterName, 'Team mode: the runbook to resume with when the run''s own file is not on this machine [default: the copy stored with the run]')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where runs are recorded [default: .rollout/ beside the runbook]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How to report progress')
            [CompletionResult]::new('--grace', '--grace', [CompletionResultType]::ParameterName, 'Time between interrupt, terminate and kill when stopping a step (or processes a killed earlier run of the target left running)')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why the run goes ahead outside its change window (recorded in the audit log)')
            [CompletionResult]::new('--approve', '--approve', [CompletionResultType]::ParameterName, 'Approve a confirm in advance: `--approve GATE`, or `--approve GATE=WORD` for a severe one')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Tick checklist items in advance: `--check GATE` (all), `--check GATE:N`, or the item''s text')
            [CompletionResult]::new('--signoff', '--signoff', [CompletionResultType]::ParameterName, 'Sign a sign-off in advance: `--signoff GATE=NAME:ROLE` (repeat for each signer)')
            [CompletionResult]::new('--signoff-file', '--signoff-file', [CompletionResultType]::ParameterName, 'A signed approval (`rollout approve --output FILE`, or a request signed with `ssh-keygen -Y sign -n rollout`, given as `REQUEST.sig` beside `REQUEST`); repeat for each signer')
            [CompletionResult]::new('--wait-for-approvals', '--wait-for-approvals', [CompletionResultType]::ParameterName, 'Where nobody can answer, wait this long at a sign-off for signed approvals to be delivered (`rollout approve` from elsewhere) before stopping to wait for approval')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('--allow-changed', '--allow-changed', [CompletionResultType]::ParameterName, 'Resume even though the runbook file changed since the run started (shows the change)')
            [CompletionResult]::new('--rerun-in-doubt', '--rerun-in-doubt', [CompletionResultType]::ParameterName, 'Run again the step that was in flight when rollout stopped')
            [CompletionResult]::new('--skip-in-doubt', '--skip-in-doubt', [CompletionResultType]::ParameterName, 'Treat the step that was in flight when rollout stopped as done')
            [CompletionResult]::new('--outside-window', '--outside-window', [CompletionResultType]::ParameterName, 'Start even though it is outside the runbook''s change window (`[runbook.window]`); needs `--reason`, recorded in the audit log')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer "yes" to plain confirms. Never satisfies a sign-off or a severe confirm')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;status' {
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where runs are recorded [default: ./.rollout and ./*/.rollout]')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;runs' {
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where runs are recorded [default: ./.rollout and ./*/.rollout]')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;rollback' {
            [CompletionResult]::new('--run', '--run', [CompletionResultType]::ParameterName, 'The run to undo [default: the latest run of this runbook not rolled back yet]')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Roll back down to this phase (included), leaving earlier phases in place')
            [CompletionResult]::new('--var', '--var', [CompletionResultType]::ParameterName, 'Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)')
            [CompletionResult]::new('--vars-file', '--vars-file', [CompletionResultType]::ParameterName, 'Read variables from a TOML file of `name = value` lines (repeatable; later files win)')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where runs are recorded [default: .rollout/ beside the runbook]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'How to report progress')
            [CompletionResult]::new('--grace', '--grace', [CompletionResultType]::ParameterName, 'Time between interrupt, terminate and kill when stopping a step (or processes a killed earlier run of the target left running)')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Why the run goes ahead outside its change window (recorded in the audit log)')
            [CompletionResult]::new('--approve', '--approve', [CompletionResultType]::ParameterName, 'Approve a confirm in advance: `--approve GATE`, or `--approve GATE=WORD` for a severe one')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Tick checklist items in advance: `--check GATE` (all), `--check GATE:N`, or the item''s text')
            [CompletionResult]::new('--signoff', '--signoff', [CompletionResultType]::ParameterName, 'Sign a sign-off in advance: `--signoff GATE=NAME:ROLE` (repeat for each signer)')
            [CompletionResult]::new('--signoff-file', '--signoff-file', [CompletionResultType]::ParameterName, 'A signed approval (`rollout approve --output FILE`, or a request signed with `ssh-keygen -Y sign -n rollout`, given as `REQUEST.sig` beside `REQUEST`); repeat for each signer')
            [CompletionResult]::new('--wait-for-approvals', '--wait-for-approvals', [CompletionResultType]::ParameterName, 'Where nobody can answer, wait this long at a sign-off for signed approvals to be delivered (`rollout approve` from elsewhere) before stopping to wait for approval')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('--no-run', '--no-run', [CompletionResultType]::ParameterName, 'Ignore saved runs: run the runbook''s own [[rollback]] section')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show the rollback plan, rendered, and do nothing')
            [CompletionResult]::new('--allow-changed', '--allow-changed', [CompletionResultType]::ParameterName, 'Roll back even though the runbook changed since the run started (e.g. a fixed rollback step; the change is shown)')
            [CompletionResult]::new('--outside-window', '--outside-window', [CompletionResultType]::ParameterName, 'Start even though it is outside the runbook''s change window (`[runbook.window]`); needs `--reason`, recorded in the audit log')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer "yes" to plain confirms. Never satisfies a sign-off or a severe confirm')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;approve' {
            [CompletionResult]::new('--gate', '--gate', [CompletionResultType]::ParameterName, 'The sign-off step''s id')
            [CompletionResult]::new('--role', '--role', [CompletionResultType]::ParameterName, 'The role you sign as [default: the sign-off''s only role; asked in a terminal]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Your SSH key: a private key file, or a public key file whose private key your ssh-agent holds [default: `signing_key` in the user config, else the agent''s first key]')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the signed approval (or the request) to this file (`-`: stdout) instead of delivering it to the run')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the signed approval (or the request) to this file (`-`: stdout) instead of delivering it to the run')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where runs are recorded [default: ./.rollout and ./*/.rollout]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('--request', '--request', [CompletionResultType]::ParameterName, 'Write the text to sign instead of signing it (for `ssh-keygen -Y sign -n rollout` elsewhere; the operator then gives `--signoff-file REQUEST.sig`)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Sign without asking (what is signed is still shown)')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt, even in a terminal')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;audit' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Verify a run''s audit log: every record''s hash, the chain, the order, and the final seal')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'rollout;audit;verify' {
            [CompletionResult]::new('--digest', '--digest', [CompletionResultType]::ParameterName, 'A published digest (`sha256:...`, printed at the end of a session) that a seal of the log must carry; what was written after it is listed, session by session')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where runs are recorded [default: ./.rollout and ./*/.rollout]')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'With --digest: fail when anything follows the published digest')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;audit;help' {
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Verify a run''s audit log: every record''s hash, the chain, the order, and the final seal')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'rollout;audit;help;verify' {
            break
        }
        'rollout;audit;help;help' {
            break
        }
        'rollout;log' {
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where runs are recorded [default: ./.rollout and ./*/.rollout]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;locks' {
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where runs are recorded [default: ./.rollout and ./*/.rollout]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;unlock' {
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where runs are recorded [default: ./.rollout and ./*/.rollout]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;watch' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;state' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write a run''s journal as file mode writes it (`audit verify FILE` checks it offline)')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Copy the runs of a state directory into the database, hashes intact (a run id the database has already is refused)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'rollout;state;export' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write it to this file instead of stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write it to this file instead of stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;state;import' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;state;help' {
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write a run''s journal as file mode writes it (`audit verify FILE` checks it offline)')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Copy the runs of a state directory into the database, hashes intact (a run id the database has already is refused)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'rollout;state;help;export' {
            break
        }
        'rollout;state;help;import' {
            break
        }
        'rollout;state;help;help' {
            break
        }
        'rollout;new' {
            [CompletionResult]::new('--template', '--template', [CompletionResultType]::ParameterName, 'The kind of rollout the runbook walks through')
            [CompletionResult]::new('--service', '--service', [CompletionResultType]::ParameterName, 'The service (Deployment) name, e.g. `payments`')
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'The Kubernetes namespace')
            [CompletionResult]::new('--image', '--image', [CompletionResultType]::ParameterName, 'The image to roll out, e.g. `registry.example.com/payments:1.4.2`')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'The kubectl context of the target cluster')
            [CompletionResult]::new('--prometheus', '--prometheus', [CompletionResultType]::ParameterName, 'The Prometheus to query in checks [default: `--prometheus-url`, then the user config]')
            [CompletionResult]::new('--owner', '--owner', [CompletionResultType]::ParameterName, 'Who owns the runbook (team or person)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Overwrite FILE if it exists')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;completions' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;man' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;schema' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;report' {
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Where runs are recorded [default: ./.rollout and ./*/.rollout]')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Report format')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Write the report to this file instead of stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Write the report to this file instead of stdout')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them')
            [CompletionResult]::new('--prometheus-url', '--prometheus-url', [CompletionResultType]::ParameterName, 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq''s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Team mode: how long a target lock''s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'rollout;help' {
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a runbook and report every problem at once, with its location')
            [CompletionResult]::new('plan', 'plan', [CompletionResultType]::ParameterValue, 'Show exactly what a run would do, fully rendered, without executing anything')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a runbook: execute its steps in order, stop at gates, record every step')
            [CompletionResult]::new('resume', 'resume', [CompletionResultType]::ParameterValue, 'Continue a paused, waiting or interrupted run from its first unfinished step')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show where a run stands')
            [CompletionResult]::new('runs', 'runs', [CompletionResultType]::ParameterValue, 'List runs, newest last')
            [CompletionResult]::new('rollback', 'rollback', [CompletionResultType]::ParameterValue, 'Undo a run: the phases it ran, last first, through their rollback steps (or, with no run of this runbook, the runbook''s own [[rollback]] section). Shows the plan and asks first')
            [CompletionResult]::new('approve', 'approve', [CompletionResultType]::ParameterValue, 'Approve a sign-off of a run with your SSH key: shows the phase as the operator sees it at the gate, asks, signs (`ssh-keygen -Y sign -n rollout`, with your ssh-agent or `--key`) and delivers the approval to the run')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Check a run''s audit log (its journal): hash chain, order, seal')
            [CompletionResult]::new('log', 'log', [CompletionResultType]::ParameterValue, 'Show a run''s audit log as readable text, phase by phase')
            [CompletionResult]::new('locks', 'locks', [CompletionResultType]::ParameterValue, 'List target locks, who holds them, and what a killed holder left running')
            [CompletionResult]::new('unlock', 'unlock', [CompletionResultType]::ParameterValue, 'Remove a target lock whose holder is stuck (recorded; a killed holder''s lock needs none: the next run stops what it left running)')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Team mode: follow a run as its records are committed to the database (from any machine), with who holds it and where; ends when the run''s session is over')
            [CompletionResult]::new('state', 'state', [CompletionResultType]::ParameterValue, 'Team mode: move runs between a state directory and the database')
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Write a new runbook from a template, asking for what is missing when in a terminal')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the completion script for a shell (see README, "Shell completions")')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the man page (roff)')
            [CompletionResult]::new('schema', 'schema', [CompletionResultType]::ParameterValue, 'Print the JSON Schema of the runbook format, for editors (see docs/runbook-format.md)')
            [CompletionResult]::new('report', 'report', [CompletionResultType]::ParameterValue, 'Write a run''s report (timeline, approvals, commands, checks, rollback, audit) from its audit log')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'rollout;help;validate' {
            break
        }
        'rollout;help;plan' {
            break
        }
        'rollout;help;run' {
            break
        }
        'rollout;help;resume' {
            break
        }
        'rollout;help;status' {
            break
        }
        'rollout;help;runs' {
            break
        }
        'rollout;help;rollback' {
            break
        }
        'rollout;help;approve' {
            break
        }
        'rollout;help;audit' {
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Verify a run''s audit log: every record''s hash, the chain, the order, and the final seal')
            break
        }
        'rollout;help;audit;verify' {
            break
        }
        'rollout;help;log' {
            break
        }
        'rollout;help;locks' {
            break
        }
        'rollout;help;unlock' {
            break
        }
        'rollout;help;watch' {
            break
        }
        'rollout;help;state' {
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write a run''s journal as file mode writes it (`audit verify FILE` checks it offline)')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Copy the runs of a state directory into the database, hashes intact (a run id the database has already is refused)')
            break
        }
        'rollout;help;state;export' {
            break
        }
        'rollout;help;state;import' {
            break
        }
        'rollout;help;new' {
            break
        }
        'rollout;help;completions' {
            break
        }
        'rollout;help;man' {
            break
        }
        'rollout;help;schema' {
            break
        }
        'rollout;help;report' {
            break
        }
        'rollout;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
