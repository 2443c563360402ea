"""Post-training with TRL: the stages `sft`, `grpo` and `dpo` on the converted base model, their shared plumbing
(`common`), the ChatML formatting of math records (`chat`) and GRPO's verifiable rewards (`rewards`)."""
