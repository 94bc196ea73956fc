"""Reading inputs: sources, encodings, workbooks, column names, the parsing rules and customer-level tables."""
