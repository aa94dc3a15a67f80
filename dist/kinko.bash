# bash completion for kinko. `make install` puts it in
# $(PREFIX)/share/bash-completion/completions/kinko; to try it from the
# source tree: source dist/kinko.bash
_kinko()
{
	local cur prev cmd
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	cmd=${COMP_WORDS[1]}

	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "serve check audit usage ops policy version help" -- "$cur"))
		return
	fi
	case "$prev" in
	--data|--audit-dir|--witness)
		COMPREPLY=($(compgen -d -- "$cur"))
		return ;;
	--config|--root-key|--tls-cert|--tls-key|--log-file|--audit-witness|--public-key|--prices)
		COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	--log-level)
		COMPREPLY=($(compgen -W "debug info warn error" -- "$cur"))
		return ;;
	--audit-sync)
		COMPREPLY=($(compgen -W "fsync write" -- "$cur"))
		return ;;
	--quotas)
		COMPREPLY=($(compgen -W "aws off" -- "$cur"))
		return ;;
	esac
	local words
	case "$cmd" in
	serve)
		words="--dev --listen --data --store --config --root-key --threads --test-mode
			--log-level --log-file --tls-cert --tls-key --tls-self-signed
			--rotation-function --allow-root-key-in-data --audit-dir --no-audit
			--audit-sync --audit-max-file-bytes --audit-rotate-seconds
			--audit-digest-seconds --audit-witness --audit-witness-syslog
			--metrics-listen --quotas --quota --help" ;;
	check)
		words="--data --store --root-key --help" ;;
	audit)
		if [ "$COMP_CWORD" -eq 2 ]; then
			words="verify"
		else
			words="--public-key --witness --now"
			COMPREPLY=($(compgen -W "$words" -- "$cur") $(compgen -d -- "$cur"))
			return
		fi ;;
	usage)
		words="--audit-dir --from --to --prices --json --print-prices" ;;
	ops)
		words="--json" ;;
	policy)
		if [ "$COMP_CWORD" -eq 2 ]; then
			words="simulate"
		else
			words="--config --store --principal --action --key"
		fi ;;
	esac
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _kinko kinko
