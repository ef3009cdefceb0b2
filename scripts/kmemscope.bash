# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# bash completion for kmemscope (make install puts it in
# share/bash-completion/completions). The commands and each command's options
# are read from kmemscope's own --help when completing, so they cannot drift
# from the binary being run.

# the commands, from the "Commands:" list of kmemscope --help
_kmemscope_commands()
{
	"$1" --help 2>/dev/null | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'
}

# a command's options, from argp's help: "  -d, --duration=SEC" or "      --json"
_kmemscope_options()
{
	"$1" "$2" --help 2>/dev/null |
		sed -nE 's/^  (-[[:alnum:]?]), (--[[:alnum:]-]+).*/\1 \2/p
			 s/^      (--[[:alnum:]-]+).*/\1/p'
}

_kmemscope()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local kms=${COMP_WORDS[0]} i

	# after --: the traced command, then its own arguments (files)
	for ((i = 2; i < COMP_CWORD; i++)); do
		if [[ ${COMP_WORDS[i]} == -- ]]; then
			if ((i == COMP_CWORD - 1)); then
				mapfile -t COMPREPLY < <(compgen -c -- "$cur")
			else
				mapfile -t COMPREPLY < <(compgen -f -- "$cur")
			fi
			return
		fi
	done
	if ((COMP_CWORD == 1)); then
		mapfile -t COMPREPLY < <(compgen -W "$(_kmemscope_commands "$kms") --help
			--version" -- "$cur")
		return
	fi
	case $prev in
	--traces)
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return
		;;
	-o | --output | -i | --input | --record | -b | --baseline | --rules | --junit)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	esac
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(_kmemscope_options "$kms" \
			"${COMP_WORDS[1]}")" -- "$cur")
	else
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
	fi
}

complete -F _kmemscope kmemscope
