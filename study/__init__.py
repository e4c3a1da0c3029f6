"""The comparison study behind ``physnn compare``: the application floor above the backends."""
