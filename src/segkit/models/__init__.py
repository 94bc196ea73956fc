"""Statistical models on the customer table: k-means, cluster validation and its nulls, CLV, backtest."""
