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
		COMPREPLY=($(compgen -W "serve check store backup restore audit usage ops policy status xks peer version help" -- "$cur"))
		return
	fi
	case "$prev" in
	--data|--audit-dir|--witness|--to|--from)
		if [ "$cmd" = store ]; then
			COMPREPLY=()
			return
		fi
		COMPREPLY=($(compgen -d -- "$cur"))
		return ;;
	--config|--root-key|--tls-cert|--tls-key|--log-file|--audit-witness|--public-key|--prices|--seed|--key-policy|--xks-client-ca|--xks-proxy-ca|--secret-file|--ca-file)
		COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	--log-level)
		COMPREPLY=($(compgen -W "debug info warn error" -- "$cur"))
		return ;;
	--log-format)
		COMPREPLY=($(compgen -W "text json" -- "$cur"))
		return ;;
	--archive)
		COMPREPLY=($(compgen -d -- "$cur"))
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
		words="--dev --listen --data --store --config --seed --root-key --threads
			--test-mode --log-level --log-file --tls-cert --tls-key --tls-self-signed
			--rotation-function --allow-root-key-in-data --audit-dir --no-audit
			--audit-sync --audit-max-file-bytes --audit-rotate-seconds
			--audit-digest-seconds --audit-index-seconds --audit-witness
			--audit-witness-syslog
			--metrics-listen --quotas --quota --node-id --shared-store --log-format
			--xks-listen --xks-client-ca --xks-proxy-ca --warm-keys --help" ;;
	check)
		words="--data --store --root-key --help" ;;
	store)
		if [ "$COMP_CWORD" -eq 2 ]; then
			words="copy"
		else
			words="--from --to --force --help"
		fi ;;
	backup)
		words="--to --data --store --config --audit-dir --help" ;;
	restore)
		words="--from --data --root-key --help" ;;
	audit)
		if [ "$COMP_CWORD" -eq 2 ]; then
			words="verify prune"
		else
			if [ "${COMP_WORDS[2]}" = prune ]; then
				words="--older-than --archive --help"
			else
				words="--public-key --witness --now --archive --help"
			fi
			COMPREPLY=($(compgen -W "$words" -- "$cur") $(compgen -d -- "$cur"))
			return
		fi ;;
	status)
		words="--endpoint --metrics --help" ;;
	usage)
		words="--audit-dir --data --from --to --prices --json --print-prices --help" ;;
	ops)
		words="--json --help" ;;
	policy)
		if [ "$COMP_CWORD" -eq 2 ]; then
			words="simulate"
		else
			words="--config --data --store --principal --action --key --key-policy
				--region --secret --context --value --help"
		fi ;;
	xks)
		if [ "$COMP_CWORD" -eq 2 ]; then
			words="check"
		else
			words="--endpoint --uri-path --access-key-id --secret-file --ca-file --key-id
				--region --timeout-ms --help"
		fi ;;
	peer)
		if [ "$COMP_CWORD" -eq 2 ]; then
			words="wrapping-key"
		else
			words="--data --store --root-key --help"
		fi ;;
	help)
		words="serve check store backup restore audit usage ops policy status xks peer version" ;;
	esac
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _kinko kinko
