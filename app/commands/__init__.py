"""Command groups of the ``medvault`` CLI; each module registers its subcommands on the shared parser."""
