"""Click option helpers shared by the commands."""

from __future__ import annotations

import click


def once(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> str | None:
    """A `multiple` option's callback that refuses it twice: click keeps the last value
    of a plain option, so `--site a --site b` silently showed b alone."""
    if len(value) > 1:
        raise click.BadParameter(f"given {len(value)} times; give it once", ctx, param)
    return value[0] if value else None


def host_pattern(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> str | None:
    """--limit, once and naming something: Ansible reads an empty pattern (`--limit ""`,
    `--limit ,`, a script's unset variable) as no limit at all, so the run would reach
    every store of the build."""
    pattern = once(ctx, param, value)
    if pattern is not None and not any(p.strip() for p in pattern.replace(":", ",").split(",")):
        raise click.BadParameter(
            f"{pattern!r} names no host: Ansible would read it as no limit and reach every "
            "store; name a store, host or group (e.g. site_gent_01)",
            ctx,
            param,
        )
    return pattern


# The components site.yml tags its plays with (tests/test_runtime_options.py reads them
# from the playbooks): what --tags may name.
COMPONENTS = ("firewall", "dhcp", "ddns", "proxy", "devices")


def components(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> str | None:
    """--tags, once and only components: Ansible runs no play for a tag none has (a typo
    such as `firewal`), so the run would lock and release every store and change nothing,
    and an empty value would run every component."""
    tags = once(ctx, param, value)
    if tags is None:
        return None
    names = [t.strip() for t in tags.split(",")]
    wrong = [t for t in names if t not in COMPONENTS]
    if wrong:
        shown = ", ".join(repr(t) for t in wrong)
        raise click.BadParameter(
            f"{shown} is not a component; name one or more of {', '.join(COMPONENTS)}, "
            "comma-separated",
            ctx,
            param,
        )
    return ",".join(names)


def batch_size(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> str | None:
    """--serial, once and a batch size Ansible takes: a whole number of stores (1 or
    more) or a percentage (1% to 100%); anything else failed only once Ansible started."""
    size = once(ctx, param, value)
    if size is None:
        return None
    text = size.strip()
    number = text.removesuffix("%")
    ok = number.isascii() and number.isdigit() and int(number) >= 1
    if ok and text.endswith("%"):
        ok = int(number) <= 100
    if not ok:
        raise click.BadParameter(
            f"{size!r} is not a batch size; give a number of stores (e.g. 10) or a "
            "percentage of them (e.g. 10%)",
            ctx,
            param,
        )
    return text
