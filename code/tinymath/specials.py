"""Special tokens: the one source of truth for their strings and ids.

The tokenizer is trained with these tokens first, in this order, so their ids are fixed for every profile; the model
config, generation config and chat template are all derived from here (tests check they agree everywhere).
"""

ENDOFTEXT = "<|endoftext|>"  # ends every pretraining document; base-model generation stops on it
PAD = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"  # ends every ChatML turn; chat-model generation stops on it
THINK = "<think>"
END_THINK = "</think>"

SPECIAL_TOKENS = (ENDOFTEXT, PAD, IM_START, IM_END, THINK, END_THINK)
ID = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}

ENDOFTEXT_ID = ID[ENDOFTEXT]
PAD_ID = ID[PAD]
IM_START_ID = ID[IM_START]
IM_END_ID = ID[IM_END]
# No BOS token: documents are separated by ENDOFTEXT, as in GPT-2 style packing.
BOS_ID = None
EOS_ID = IM_END_ID  # the tokenizer's eos_token (chat turns end here)
STOP_IDS = (IM_END_ID, ENDOFTEXT_ID)  # generation stops on either

# ChatML with {% generation %} markers, so TRL's assistant-only loss masks exactly `content<|im_end|>`.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
