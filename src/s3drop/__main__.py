from s3drop._cli import main

if __name__ == "__main__":  # not when a decode worker (multiprocessing) imports it
    main()
