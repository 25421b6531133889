from tfcompat.cli import main

main()
