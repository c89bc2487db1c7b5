from mmscn.cli import main

raise SystemExit(main())
