from wrn_deploy.cli import main

main()
