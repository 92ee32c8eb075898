from data_sync.cli import main

main()
