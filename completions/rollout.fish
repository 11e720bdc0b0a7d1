# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_rollout_global_optspecs
    string join \n color= prometheus-url= state= lease= h/help V/version
end

function __fish_rollout_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_rollout_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_rollout_using_subcommand
    set -l cmd (__fish_rollout_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c rollout -n "__fish_rollout_needs_command" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_needs_command" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_needs_command" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_needs_command" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_needs_command" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_needs_command" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "validate" -d 'Check a runbook and report every problem at once, with its location'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "plan" -d 'Show exactly what a run would do, fully rendered, without executing anything'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "run" -d 'Run a runbook: execute its steps in order, stop at gates, record every step'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "resume" -d 'Continue a paused, waiting or interrupted run from its first unfinished step'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "status" -d 'Show where a run stands'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "runs" -d 'List runs, newest last'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "rollback" -d 'Undo a run: the phases it ran, last first, through their rollback steps (or, with no run of this runbook, the runbook\'s own [[rollback]] section). Shows the plan and asks first'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "approve" -d 'Approve a sign-off of a run with your SSH key: shows the phase as the operator sees it at the gate, asks, signs (`ssh-keygen -Y sign -n rollout`, with your ssh-agent or `--key`) and delivers the approval to the run'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "audit" -d 'Check a run\'s audit log (its journal): hash chain, order, seal'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "log" -d 'Show a run\'s audit log as readable text, phase by phase'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "locks" -d 'List target locks, who holds them, and what a killed holder left running'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "unlock" -d 'Remove a target lock whose holder is stuck (recorded; a killed holder\'s lock needs none: the next run stops what it left running)'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "watch" -d 'Team mode: follow a run as its records are committed to the database (from any machine), with who holds it and where; ends when the run\'s session is over'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "state" -d 'Team mode: move runs between a state directory and the database'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "new" -d 'Write a new runbook from a template, asking for what is missing when in a terminal'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "completions" -d 'Print the completion script for a shell (see README, "Shell completions")'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "man" -d 'Print the man page (roff)'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "schema" -d 'Print the JSON Schema of the runbook format, for editors (see docs/runbook-format.md)'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "report" -d 'Write a run\'s report (timeline, approvals, commands, checks, rollback, audit) from its audit log'
complete -c rollout -n "__fish_rollout_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rollout -n "__fish_rollout_using_subcommand validate" -l var -d 'Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)' -r
complete -c rollout -n "__fish_rollout_using_subcommand validate" -l vars-file -d 'Read variables from a TOML file of `name = value` lines (repeatable; later files win)' -r -F
complete -c rollout -n "__fish_rollout_using_subcommand validate" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand validate" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand validate" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand validate" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand validate" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_using_subcommand validate" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand plan" -l var -d 'Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)' -r
complete -c rollout -n "__fish_rollout_using_subcommand plan" -l vars-file -d 'Read variables from a TOML file of `name = value` lines (repeatable; later files win)' -r -F
complete -c rollout -n "__fish_rollout_using_subcommand plan" -l format -d 'Output format' -r -f -a "text\t'A readable preview for people'
json\t'One JSON document (see docs/plan-json.md)'"
complete -c rollout -n "__fish_rollout_using_subcommand plan" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand plan" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand plan" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand plan" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand plan" -l live-checks -d 'Also run each metric query once (read-only) and show its current value against the threshold'
complete -c rollout -n "__fish_rollout_using_subcommand plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rollout -n "__fish_rollout_using_subcommand plan" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand run" -l var -d 'Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)' -r
complete -c rollout -n "__fish_rollout_using_subcommand run" -l vars-file -d 'Read variables from a TOML file of `name = value` lines (repeatable; later files win)' -r -F
complete -c rollout -n "__fish_rollout_using_subcommand run" -l format -d 'Plan format, with --dry-run' -r -f -a "text\t'A readable preview for people'
json\t'One JSON document (see docs/plan-json.md)'"
complete -c rollout -n "__fish_rollout_using_subcommand run" -l state-dir -d 'Where runs are recorded [default: .rollout/ beside the runbook]' -r -f -a "(__fish_complete_directories)"
complete -c rollout -n "__fish_rollout_using_subcommand run" -l output -d 'How to report progress' -r -f -a "text\t'Live terminal view (plain lines when not a terminal)'
json\t'One JSON event per line (NDJSON) on stdout; see docs/events.md'"
complete -c rollout -n "__fish_rollout_using_subcommand run" -l grace -d 'Time between interrupt, terminate and kill when stopping a step (or processes a killed earlier run of the target left running)' -r
complete -c rollout -n "__fish_rollout_using_subcommand run" -l reason -d 'Why the run goes ahead outside its change window (recorded in the audit log)' -r
complete -c rollout -n "__fish_rollout_using_subcommand run" -l approve -d 'Approve a confirm in advance: `--approve GATE`, or `--approve GATE=WORD` for a severe one' -r
complete -c rollout -n "__fish_rollout_using_subcommand run" -l check -d 'Tick checklist items in advance: `--check GATE` (all), `--check GATE:N`, or the item\'s text' -r
complete -c rollout -n "__fish_rollout_using_subcommand run" -l signoff -d 'Sign a sign-off in advance: `--signoff GATE=NAME:ROLE` (repeat for each signer)' -r
complete -c rollout -n "__fish_rollout_using_subcommand run" -l signoff-file -d 'A signed approval (`rollout approve --output FILE`, or a request signed with `ssh-keygen -Y sign -n rollout`, given as `REQUEST.sig` beside `REQUEST`); repeat for each signer' -r -F
complete -c rollout -n "__fish_rollout_using_subcommand run" -l wait-for-approvals -d 'Where nobody can answer, wait this long at a sign-off for signed approvals to be delivered (`rollout approve` from elsewhere) before stopping to wait for approval' -r
complete -c rollout -n "__fish_rollout_using_subcommand run" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand run" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand run" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand run" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand run" -l dry-run -d 'Show the plan instead of running (exactly `rollout plan`)'
complete -c rollout -n "__fish_rollout_using_subcommand run" -l outside-window -d 'Start even though it is outside the runbook\'s change window (`[runbook.window]`); needs `--reason`, recorded in the audit log'
complete -c rollout -n "__fish_rollout_using_subcommand run" -l yes -d 'Answer "yes" to plain confirms. Never satisfies a sign-off or a severe confirm'
complete -c rollout -n "__fish_rollout_using_subcommand run" -l no-input -d 'Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)'
complete -c rollout -n "__fish_rollout_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rollout -n "__fish_rollout_using_subcommand run" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l runbook -d 'Team mode: the runbook to resume with when the run\'s own file is not on this machine [default: the copy stored with the run]' -r -F
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l state-dir -d 'Where runs are recorded [default: .rollout/ beside the runbook]' -r -f -a "(__fish_complete_directories)"
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l output -d 'How to report progress' -r -f -a "text\t'Live terminal view (plain lines when not a terminal)'
json\t'One JSON event per line (NDJSON) on stdout; see docs/events.md'"
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l grace -d 'Time between interrupt, terminate and kill when stopping a step (or processes a killed earlier run of the target left running)' -r
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l reason -d 'Why the run goes ahead outside its change window (recorded in the audit log)' -r
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l approve -d 'Approve a confirm in advance: `--approve GATE`, or `--approve GATE=WORD` for a severe one' -r
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l check -d 'Tick checklist items in advance: `--check GATE` (all), `--check GATE:N`, or the item\'s text' -r
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l signoff -d 'Sign a sign-off in advance: `--signoff GATE=NAME:ROLE` (repeat for each signer)' -r
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l signoff-file -d 'A signed approval (`rollout approve --output FILE`, or a request signed with `ssh-keygen -Y sign -n rollout`, given as `REQUEST.sig` beside `REQUEST`); repeat for each signer' -r -F
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l wait-for-approvals -d 'Where nobody can answer, wait this long at a sign-off for signed approvals to be delivered (`rollout approve` from elsewhere) before stopping to wait for approval' -r
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l allow-changed -d 'Resume even though the runbook file changed since the run started (shows the change)'
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l rerun-in-doubt -d 'Run again the step that was in flight when rollout stopped'
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l skip-in-doubt -d 'Treat the step that was in flight when rollout stopped as done'
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l outside-window -d 'Start even though it is outside the runbook\'s change window (`[runbook.window]`); needs `--reason`, recorded in the audit log'
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l yes -d 'Answer "yes" to plain confirms. Never satisfies a sign-off or a severe confirm'
complete -c rollout -n "__fish_rollout_using_subcommand resume" -l no-input -d 'Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)'
complete -c rollout -n "__fish_rollout_using_subcommand resume" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rollout -n "__fish_rollout_using_subcommand resume" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand status" -l state-dir -d 'Where runs are recorded [default: ./.rollout and ./*/.rollout]' -r -f -a "(__fish_complete_directories)"
complete -c rollout -n "__fish_rollout_using_subcommand status" -l format -d 'Output format' -r -f -a "text\t'A readable preview for people'
json\t'One JSON document (see docs/plan-json.md)'"
complete -c rollout -n "__fish_rollout_using_subcommand status" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand status" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand status" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand status" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rollout -n "__fish_rollout_using_subcommand status" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand runs" -l state-dir -d 'Where runs are recorded [default: ./.rollout and ./*/.rollout]' -r -f -a "(__fish_complete_directories)"
complete -c rollout -n "__fish_rollout_using_subcommand runs" -l format -d 'Output format' -r -f -a "text\t'A readable preview for people'
json\t'One JSON document (see docs/plan-json.md)'"
complete -c rollout -n "__fish_rollout_using_subcommand runs" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand runs" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand runs" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand runs" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand runs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rollout -n "__fish_rollout_using_subcommand runs" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l run -d 'The run to undo [default: the latest run of this runbook not rolled back yet]' -r
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l to -d 'Roll back down to this phase (included), leaving earlier phases in place' -r
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l var -d 'Set a variable: `--var name=value` (repeatable; wins over `--vars-file` and `ROLLOUT_VAR_*`)' -r
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l vars-file -d 'Read variables from a TOML file of `name = value` lines (repeatable; later files win)' -r -F
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l state-dir -d 'Where runs are recorded [default: .rollout/ beside the runbook]' -r -f -a "(__fish_complete_directories)"
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l output -d 'How to report progress' -r -f -a "text\t'Live terminal view (plain lines when not a terminal)'
json\t'One JSON event per line (NDJSON) on stdout; see docs/events.md'"
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l grace -d 'Time between interrupt, terminate and kill when stopping a step (or processes a killed earlier run of the target left running)' -r
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l reason -d 'Why the run goes ahead outside its change window (recorded in the audit log)' -r
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l approve -d 'Approve a confirm in advance: `--approve GATE`, or `--approve GATE=WORD` for a severe one' -r
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l check -d 'Tick checklist items in advance: `--check GATE` (all), `--check GATE:N`, or the item\'s text' -r
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l signoff -d 'Sign a sign-off in advance: `--signoff GATE=NAME:ROLE` (repeat for each signer)' -r
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l signoff-file -d 'A signed approval (`rollout approve --output FILE`, or a request signed with `ssh-keygen -Y sign -n rollout`, given as `REQUEST.sig` beside `REQUEST`); repeat for each signer' -r -F
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l wait-for-approvals -d 'Where nobody can answer, wait this long at a sign-off for signed approvals to be delivered (`rollout approve` from elsewhere) before stopping to wait for approval' -r
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l no-run -d 'Ignore saved runs: run the runbook\'s own [[rollback]] section'
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l dry-run -d 'Show the rollback plan, rendered, and do nothing'
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l allow-changed -d 'Roll back even though the runbook changed since the run started (e.g. a fixed rollback step; the change is shown)'
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l outside-window -d 'Start even though it is outside the runbook\'s change window (`[runbook.window]`); needs `--reason`, recorded in the audit log'
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l yes -d 'Answer "yes" to plain confirms. Never satisfies a sign-off or a severe confirm'
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -l no-input -d 'Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)'
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rollout -n "__fish_rollout_using_subcommand rollback" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand approve" -l gate -d 'The sign-off step\'s id' -r
complete -c rollout -n "__fish_rollout_using_subcommand approve" -l role -d 'The role you sign as [default: the sign-off\'s only role; asked in a terminal]' -r
complete -c rollout -n "__fish_rollout_using_subcommand approve" -l key -d 'Your SSH key: a private key file, or a public key file whose private key your ssh-agent holds [default: `signing_key` in the user config, else the agent\'s first key]' -r -F
complete -c rollout -n "__fish_rollout_using_subcommand approve" -s o -l output -d 'Write the signed approval (or the request) to this file (`-`: stdout) instead of delivering it to the run' -r -F
complete -c rollout -n "__fish_rollout_using_subcommand approve" -l state-dir -d 'Where runs are recorded [default: ./.rollout and ./*/.rollout]' -r -f -a "(__fish_complete_directories)"
complete -c rollout -n "__fish_rollout_using_subcommand approve" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand approve" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand approve" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand approve" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand approve" -l request -d 'Write the text to sign instead of signing it (for `ssh-keygen -Y sign -n rollout` elsewhere; the operator then gives `--signoff-file REQUEST.sig`)'
complete -c rollout -n "__fish_rollout_using_subcommand approve" -l yes -d 'Sign without asking (what is signed is still shown)'
complete -c rollout -n "__fish_rollout_using_subcommand approve" -l no-input -d 'Never prompt, even in a terminal'
complete -c rollout -n "__fish_rollout_using_subcommand approve" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_using_subcommand approve" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand audit; and not __fish_seen_subcommand_from verify help" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand audit; and not __fish_seen_subcommand_from verify help" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand audit; and not __fish_seen_subcommand_from verify help" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand audit; and not __fish_seen_subcommand_from verify help" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand audit; and not __fish_seen_subcommand_from verify help" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_using_subcommand audit; and not __fish_seen_subcommand_from verify help" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand audit; and not __fish_seen_subcommand_from verify help" -f -a "verify" -d 'Verify a run\'s audit log: every record\'s hash, the chain, the order, and the final seal'
complete -c rollout -n "__fish_rollout_using_subcommand audit; and not __fish_seen_subcommand_from verify help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rollout -n "__fish_rollout_using_subcommand audit; and __fish_seen_subcommand_from verify" -l digest -d 'A published digest (`sha256:...`, printed at the end of a session) that a seal of the log must carry; what was written after it is listed, session by session' -r
complete -c rollout -n "__fish_rollout_using_subcommand audit; and __fish_seen_subcommand_from verify" -l state-dir -d 'Where runs are recorded [default: ./.rollout and ./*/.rollout]' -r -f -a "(__fish_complete_directories)"
complete -c rollout -n "__fish_rollout_using_subcommand audit; and __fish_seen_subcommand_from verify" -l format -d 'Output format' -r -f -a "text\t'A readable preview for people'
json\t'One JSON document (see docs/plan-json.md)'"
complete -c rollout -n "__fish_rollout_using_subcommand audit; and __fish_seen_subcommand_from verify" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand audit; and __fish_seen_subcommand_from verify" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand audit; and __fish_seen_subcommand_from verify" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand audit; and __fish_seen_subcommand_from verify" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand audit; and __fish_seen_subcommand_from verify" -l strict -d 'With --digest: fail when anything follows the published digest'
complete -c rollout -n "__fish_rollout_using_subcommand audit; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rollout -n "__fish_rollout_using_subcommand audit; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Verify a run\'s audit log: every record\'s hash, the chain, the order, and the final seal'
complete -c rollout -n "__fish_rollout_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rollout -n "__fish_rollout_using_subcommand log" -l state-dir -d 'Where runs are recorded [default: ./.rollout and ./*/.rollout]' -r -f -a "(__fish_complete_directories)"
complete -c rollout -n "__fish_rollout_using_subcommand log" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand log" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand log" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand log" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand log" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_using_subcommand log" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand locks" -l state-dir -d 'Where runs are recorded [default: ./.rollout and ./*/.rollout]' -r -f -a "(__fish_complete_directories)"
complete -c rollout -n "__fish_rollout_using_subcommand locks" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand locks" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand locks" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand locks" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand locks" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_using_subcommand locks" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand unlock" -l state-dir -d 'Where runs are recorded [default: ./.rollout and ./*/.rollout]' -r -f -a "(__fish_complete_directories)"
complete -c rollout -n "__fish_rollout_using_subcommand unlock" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand unlock" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand unlock" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand unlock" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand unlock" -l yes -d 'Do not ask for confirmation'
complete -c rollout -n "__fish_rollout_using_subcommand unlock" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_using_subcommand unlock" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand watch" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand watch" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand watch" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand watch" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand watch" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_using_subcommand watch" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand state; and not __fish_seen_subcommand_from export import help" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand state; and not __fish_seen_subcommand_from export import help" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand state; and not __fish_seen_subcommand_from export import help" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand state; and not __fish_seen_subcommand_from export import help" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand state; and not __fish_seen_subcommand_from export import help" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_using_subcommand state; and not __fish_seen_subcommand_from export import help" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand state; and not __fish_seen_subcommand_from export import help" -f -a "export" -d 'Write a run\'s journal as file mode writes it (`audit verify FILE` checks it offline)'
complete -c rollout -n "__fish_rollout_using_subcommand state; and not __fish_seen_subcommand_from export import help" -f -a "import" -d 'Copy the runs of a state directory into the database, hashes intact (a run id the database has already is refused)'
complete -c rollout -n "__fish_rollout_using_subcommand state; and not __fish_seen_subcommand_from export import help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from export" -s o -l output -d 'Write it to this file instead of stdout' -r -F
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from export" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from export" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from export" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from export" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from import" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from import" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from import" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from import" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from import" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write a run\'s journal as file mode writes it (`audit verify FILE` checks it offline)'
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from help" -f -a "import" -d 'Copy the runs of a state directory into the database, hashes intact (a run id the database has already is refused)'
complete -c rollout -n "__fish_rollout_using_subcommand state; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rollout -n "__fish_rollout_using_subcommand new" -l template -d 'The kind of rollout the runbook walks through' -r -f -a "canary\t'Shift traffic in weighted steps, each held behind metric gates, with abort criteria'
blue-green\t'Deploy beside the live version, then switch the Service selector over'
rolling\t'Rolling update of a Deployment, watched with `kubectl rollout status`'
basic\t'The smallest useful runbook: deploy, verify, roll back'"
complete -c rollout -n "__fish_rollout_using_subcommand new" -l service -d 'The service (Deployment) name, e.g. `payments`' -r
complete -c rollout -n "__fish_rollout_using_subcommand new" -l namespace -d 'The Kubernetes namespace' -r
complete -c rollout -n "__fish_rollout_using_subcommand new" -l image -d 'The image to roll out, e.g. `registry.example.com/payments:1.4.2`' -r
complete -c rollout -n "__fish_rollout_using_subcommand new" -l context -d 'The kubectl context of the target cluster' -r
complete -c rollout -n "__fish_rollout_using_subcommand new" -l prometheus -d 'The Prometheus to query in checks [default: `--prometheus-url`, then the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand new" -l owner -d 'Who owns the runbook (team or person)' -r
complete -c rollout -n "__fish_rollout_using_subcommand new" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand new" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand new" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand new" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand new" -l force -d 'Overwrite FILE if it exists'
complete -c rollout -n "__fish_rollout_using_subcommand new" -l no-input -d 'Never prompt, even in a terminal (prompts are also off when CI is set or stdin is not a terminal)'
complete -c rollout -n "__fish_rollout_using_subcommand new" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rollout -n "__fish_rollout_using_subcommand new" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand completions" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand completions" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand completions" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand completions" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand completions" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_using_subcommand completions" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand man" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand man" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand man" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand man" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand man" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_using_subcommand man" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand schema" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand schema" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand schema" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand schema" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand schema" -s h -l help -d 'Print help'
complete -c rollout -n "__fish_rollout_using_subcommand schema" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand report" -l state-dir -d 'Where runs are recorded [default: ./.rollout and ./*/.rollout]' -r -f -a "(__fish_complete_directories)"
complete -c rollout -n "__fish_rollout_using_subcommand report" -l format -d 'Report format' -r -f -a "md\t'Markdown: headings and tables, to paste into a ticket or post-mortem'
html\t'One self-contained HTML page (inline CSS and SVG, no scripts or network assets)'
json\t'The report model as JSON (see docs/report-json.md)'"
complete -c rollout -n "__fish_rollout_using_subcommand report" -s o -l output -d 'Write the report to this file instead of stdout' -r -F
complete -c rollout -n "__fish_rollout_using_subcommand report" -l color -d 'When to use colours [default: `color` in the user config, else auto]. `NO_COLOR` (any value) turns them off unless this flag or `ROLLOUT_COLOR` asks for them' -r -f -a "auto\t''
always\t''
never\t''"
complete -c rollout -n "__fish_rollout_using_subcommand report" -l prometheus-url -d 'Prometheus to ask when the runbook names none (neither on the step nor in `[defaults]`) [default: `prometheus_url` in the user config]' -r -f
complete -c rollout -n "__fish_rollout_using_subcommand report" -l state -d 'Keep runs, journals and locks in a shared `PostgreSQL` database (team mode): `postgres://user@host:port/db?sslmode=verify-full` (libpq\'s PGPASSWORD, ~/.pgpass, PGSSLROOTCERT apply), or `file:DIR` for a state directory [default: `state` in the user config, else files]' -r
complete -c rollout -n "__fish_rollout_using_subcommand report" -l lease -d 'Team mode: how long a target lock\'s lease lasts without a heartbeat (renewed every third of it, more often for a long `--grace`); a holder that cannot renew it stops its step before it runs out [default: `lease` in the user config, else 30s]' -r
complete -c rollout -n "__fish_rollout_using_subcommand report" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rollout -n "__fish_rollout_using_subcommand report" -s V -l version -d 'Print version'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "validate" -d 'Check a runbook and report every problem at once, with its location'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "plan" -d 'Show exactly what a run would do, fully rendered, without executing anything'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "run" -d 'Run a runbook: execute its steps in order, stop at gates, record every step'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "resume" -d 'Continue a paused, waiting or interrupted run from its first unfinished step'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "status" -d 'Show where a run stands'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "runs" -d 'List runs, newest last'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "rollback" -d 'Undo a run: the phases it ran, last first, through their rollback steps (or, with no run of this runbook, the runbook\'s own [[rollback]] section). Shows the plan and asks first'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "approve" -d 'Approve a sign-off of a run with your SSH key: shows the phase as the operator sees it at the gate, asks, signs (`ssh-keygen -Y sign -n rollout`, with your ssh-agent or `--key`) and delivers the approval to the run'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "audit" -d 'Check a run\'s audit log (its journal): hash chain, order, seal'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "log" -d 'Show a run\'s audit log as readable text, phase by phase'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "locks" -d 'List target locks, who holds them, and what a killed holder left running'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "unlock" -d 'Remove a target lock whose holder is stuck (recorded; a killed holder\'s lock needs none: the next run stops what it left running)'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "watch" -d 'Team mode: follow a run as its records are committed to the database (from any machine), with who holds it and where; ends when the run\'s session is over'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "state" -d 'Team mode: move runs between a state directory and the database'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "new" -d 'Write a new runbook from a template, asking for what is missing when in a terminal'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "completions" -d 'Print the completion script for a shell (see README, "Shell completions")'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "man" -d 'Print the man page (roff)'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "schema" -d 'Print the JSON Schema of the runbook format, for editors (see docs/runbook-format.md)'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "report" -d 'Write a run\'s report (timeline, approvals, commands, checks, rollback, audit) from its audit log'
complete -c rollout -n "__fish_rollout_using_subcommand help; and not __fish_seen_subcommand_from validate plan run resume status runs rollback approve audit log locks unlock watch state new completions man schema report help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rollout -n "__fish_rollout_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "verify" -d 'Verify a run\'s audit log: every record\'s hash, the chain, the order, and the final seal'
complete -c rollout -n "__fish_rollout_using_subcommand help; and __fish_seen_subcommand_from state" -f -a "export" -d 'Write a run\'s journal as file mode writes it (`audit verify FILE` checks it offline)'
complete -c rollout -n "__fish_rollout_using_subcommand help; and __fish_seen_subcommand_from state" -f -a "import" -d 'Copy the runs of a state directory into the database, hashes intact (a run id the database has already is refused)'
