from segkit.cli.app import main  # absolute: spark-submit runs this file as a script

main()
