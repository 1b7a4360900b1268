#!/bin/bash
# Written by `hpcjobs export-sbatch`: 24 runs, one per array task. Submit: sbatch <file>

# Parameters
#SBATCH --array=0-23%16
#SBATCH --cpus-per-task=2
#SBATCH --error=/home/ada/results/digits-depth/submitit/%A_%a_0_log.err
#SBATCH --gpus-per-node=1
#SBATCH --job-name=hpcjobs-digits-depth
#SBATCH --mem=8192M
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output=/home/ada/results/digits-depth/submitit/%A_%a_0_log.out
#SBATCH --partition=gpu
#SBATCH --requeue
#SBATCH --signal=USR2@120
#SBATCH --time=20

# command
srun --unbuffered --output /home/ada/results/digits-depth/submitit/%A_%a_%t_log.out --error /home/ada/results/digits-depth/submitit/%A_%a_%t_log.err python3 -m hpcjobs run /home/ada/results/digits-depth --index "${SLURM_ARRAY_TASK_ID:-0}"
