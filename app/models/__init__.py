"""Qt item models of the record views. They hold ids and a few words per row, never whole records, and load
pages on the task runner as a view scrolls (``canFetchMore``/``fetchMore``), so a vault of any size opens at once."""
